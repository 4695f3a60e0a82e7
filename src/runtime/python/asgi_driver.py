"""warren-python's ASGI 3.0 driver: the asyncio side of an ASGI worker.

Compiled into the program (scripts/embed_text.py) and run by asgi.c as the
module warren_asgi; its C half is _warren_asgi (asgi_chan.c), which owns
the channel and never blocks. Two entry points:

  choose(targets, protocol)  in the process that loaded the application
      (the zygote): which ASGI flavour each target speaks, or None for
      WSGI; ValueError (one line, the start fails with it) when the
      targets cannot be served together.
  serve(targets, kinds)      in each worker: one event loop, lifespan
      startup, HELLO, requests until the router closes the channel,
      lifespan shutdown; returns the exit status.

One loop serves up to _warren_asgi.STREAMS requests at once: the loop
watches the channel's descriptor, takes what arrived (Channel.poll) and
wakes the requests waiting on it. receive() and send() wait only for the
channel: for body bytes, and for the router's credit (so a slow client
slows its own request, never the others).

A WebSocket is a request the router let switch protocols (upgrade()): once
the application accepts it, the 101 makes the request a tunnel, and the
frames of RFC 6455 are coded here, on the tunnel's bytes (_WebSocket).
"""

import base64
import hashlib
import inspect
import os
import struct

import _warren_asgi as _w

PATHSEND_PIECE = 1 << 16     # file bytes read per write (one channel message)

# The event loop's module: imported once the application is known to be
# ASGI (in the zygote, so its workers share it), never for a WSGI one.
asyncio = None

ASGI3, ASGI2 = "asgi3", "asgi2"
LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}
WEBSOCKET = "websocket"
WEBSOCKET_ASGI_SPEC = "2.3"


class ClientDisconnected(OSError):
    """What send() raises once the client went away (ASGI: an OSError)."""


# ----------------------------------------------------------- the choice

def _positional(app):
    """How many positional arguments app takes; None when it cannot be
    told (no signature, or *args)."""
    try:
        params = inspect.signature(app).parameters.values()
    except (TypeError, ValueError):
        return None
    count = 0
    for p in params:
        if p.kind == p.VAR_POSITIONAL:
            return None
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            count += 1
    return count


def _is_coroutine(app):
    """async def, or an object whose __call__ is (not a class: calling
    one makes an instance)."""
    if inspect.iscoroutinefunction(app):
        return True
    if inspect.isclass(app):
        return False
    return inspect.iscoroutinefunction(getattr(app, "__call__", None))


def kind_of(app, said_asgi):
    """Unit's rule: an async callable, or one of three arguments (scope,
    receive, send), is ASGI 3; one of one argument (scope) is the legacy
    ASGI 2 "double callable"; anything else is WSGI, unless the
    configuration said "asgi" (then ASGI 3)."""
    if _is_coroutine(app):
        return ASGI3
    count = _positional(app)
    if count == 1:
        return ASGI2
    if count == 3 or said_asgi:
        return ASGI3
    return None


def _label(name):
    return 'target "%s": ' % name if name else ""


def choose(targets, protocol):
    """targets: [(name, app)]; protocol: "asgi" or None (detect)."""
    global asyncio
    kinds = [kind_of(app, protocol == "asgi") for _, app in targets]
    if not any(kinds):
        return None
    wsgi = [name for (name, _), kind in zip(targets, kinds) if kind is None]
    if wsgi:
        asgi = [name for (name, _), kind in zip(targets, kinds) if kind]
        raise ValueError(
            'the targets mix ASGI (%s) and WSGI (%s) applications; one '
            'application serves one protocol'
            % (", ".join('"%s"' % n for n in asgi),
               ", ".join('"%s"' % n for n in wsgi)))
    import asyncio as module
    asyncio = module
    return kinds


# ------------------------------------------------------------ lifespan

class _Lifespan:
    """One application's lifespan task: startup before the worker says
    HELLO, shutdown once the router closed the channel. An application
    that raises (or returns) before answering the startup does not
    support lifespan: the worker goes on without it (ASGI spec)."""

    def __init__(self, loop, app, kind, name):
        self.loop = loop
        self.app = app
        self.kind = kind
        self.name = name
        self.state = {}
        self.events = asyncio.Queue()
        self.phase = None       # "startup" or "shutdown" while awaited
        self.answer = None      # its future: (ok, message), None: no answer
        self.supported = True
        self.task = None

    async def startup(self):
        """True when the worker may go on."""
        self.task = self.loop.create_task(self._run())
        outcome = await self._ask("startup")
        if outcome is None:
            return True
        ok, message = outcome
        if not ok:
            _w.log("%slifespan startup failed%s" % (
                _label(self.name), ": " + message if message else
                " (the application gave no message)"))
        return ok

    async def shutdown(self):
        if not self.supported or self.task.done():
            return
        outcome = await self._ask("shutdown")
        if outcome is not None and not outcome[0]:
            _w.log("%slifespan shutdown failed%s" % (
                _label(self.name), ": " + outcome[1] if outcome[1] else ""))
        if not self.task.done():
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def _ask(self, phase):
        self.phase = phase
        self.answer = self.loop.create_future()
        self.events.put_nowait({"type": "lifespan." + phase})
        try:
            return await self.answer
        finally:
            self.phase = None

    async def _run(self):
        scope = {"type": "lifespan", "asgi": dict(LIFESPAN_ASGI),
                 "state": self.state}
        try:
            if self.kind == ASGI3:
                await self.app(scope, self.receive, self.send)
            else:
                await self.app(scope)(self.receive, self.send)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._ended(exc)
        else:
            self._ended(None)

    def _ended(self, exc):
        if self.phase == "startup" and not self.answer.done():
            self.supported = False
            why = ("it returned without answering" if exc is None else
                   "%s: %s" % (type(exc).__name__, exc))
            _w.log("%sASGI lifespan not supported by the application (%s); "
                   "going on without it" % (_label(self.name), why))
            self.answer.set_result(None)
            return
        if exc is not None:
            _w.log_exception("%sexception in the application's lifespan"
                             % _label(self.name), exc)
        if self.phase == "shutdown" and not self.answer.done():
            self.answer.set_result(None)

    async def receive(self):
        return await self.events.get()

    async def send(self, message):
        kind = message["type"]
        if self.phase is None or not kind.startswith(
                "lifespan.%s." % self.phase):
            raise RuntimeError("unexpected ASGI message %r in lifespan"
                               % (kind,))
        outcome = kind.rsplit(".", 1)[1]
        if outcome not in ("complete", "failed") or self.answer.done():
            raise RuntimeError("unexpected ASGI message %r in lifespan"
                               % (kind,))
        self.answer.set_result((outcome == "complete",
                                str(message.get("message", ""))))


# ------------------------------------------------------- one request

class _Http:
    """One HTTP request: the application's receive() and send(), and what
    happens when it returns or raises (as the WSGI side: an exception
    before the response went out is a 500, after it a cut)."""

    __slots__ = ("worker", "req", "task", "scope", "waiters", "started",
                 "body_started", "body_done", "done", "gone")

    def __init__(self, worker, req):
        self.worker = worker
        self.req = req
        self.task = None
        self.scope = None
        self.waiters = []
        self.started = False        # http.response.start taken
        self.body_started = False   # the head went out with some body
        self.body_done = False      # the whole request body was received
        self.done = False           # the response is complete
        self.gone = False           # the client went away

    # ------------------------------------------------- waiting

    def _wait(self):
        """A future the worker resolves after the channel moved."""
        fut = self.worker.loop.create_future()
        self.waiters.append(fut)
        self.worker.waiting.add(self)
        return fut

    def wake(self):
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    @property
    def desc(self):
        """"GET /path?query", for log lines (made only for them)."""
        if self.scope is None:
            return self.req.describe()
        query = self.scope["query_string"]
        return "%s %s%s" % (self.scope["method"],
                            self.scope["raw_path"].decode("latin-1"),
                            "?" + query.decode("latin-1") if query else "")

    def _check_gone(self):
        if not self.gone and self.req.aborted():
            self.gone = True
        if self.gone:
            raise ClientDisconnected("the client went away")

    # ------------------------------------------------- the application

    async def run(self):
        req = self.req
        try:
            if req.target < 0:
                _w.log("no such target in this application: %s, answered 500"
                       % self.desc)
                req.fail()
                self.done = True
                return
            app, kind, lifespan = self.worker.apps[req.target]
            self.scope = scope = self._scope()
            if scope is None:
                return              # answered already (a bad handshake)
            scope["state"] = dict(lifespan.state)   # shallow copy (ASGI)
            if kind == ASGI3:
                await app(scope, self.receive, self.send)
            else:
                await app(scope)(self.receive, self.send)
        except asyncio.CancelledError:
            req.abort()             # the channel closed under it
            raise
        except BaseException as exc:
            self._failed(exc)
        else:
            self._returned()
        finally:
            self.worker.active.discard(self)

    def _scope(self):
        scope = self.req.scope()
        # Starlette's FileResponse and others hand over a file by its path.
        scope["extensions"] = {"http.response.pathsend": {}}
        return scope

    def _returned(self):
        if self.done:
            return
        if self.gone or self.req.aborted():
            self.req.abort()
            return
        if self.body_started:
            _w.log("the application returned before its response ended "
                   "(%s), response cut" % self.desc)
        else:
            _w.log("the application returned without a response (%s), "
                   "answered 500" % self.desc)
        self.req.fail()

    def _failed(self, exc):
        if self.done:
            _w.log_exception("exception in the application after its "
                             "response (%s)" % self.desc, exc)
            return
        if isinstance(exc, ClientDisconnected) and self.gone:
            self.req.abort()        # the client left: nothing to report
            return
        _w.log_exception("exception in the application (%s), %s" % (
            self.desc, "response cut" if self.body_started
            else "answered 500"), exc)
        self.req.fail()

    # ------------------------------------------------- receive

    async def receive(self):
        req = self.req
        while True:
            if self.done or self.gone:
                return {"type": "http.disconnect"}
            if req.aborted():
                self.gone = True
                continue
            if not self.body_done:
                try:
                    data = req.read()
                except OSError:     # as in _write
                    self.gone = True
                    continue
                if data is not None:
                    more = not req.body_end()
                    self.body_done = not more
                    return {"type": "http.request", "body": data,
                            "more_body": more}
            await self._wait()

    # ------------------------------------------------- send

    async def send(self, message):
        kind = message["type"]
        if kind == "http.response.start":
            if self.started:
                raise RuntimeError("http.response.start sent twice")
            # A client already gone is found by the body's write.
            self.req.start(message["status"], message.get("headers", ()))
            self.started = True
        elif kind == "http.response.body":
            if not self.started:
                raise RuntimeError("http.response.body before "
                                   "http.response.start")
            if self.done:
                raise RuntimeError("http.response.body after the response "
                                   "ended (more_body was False)")
            if self.gone:
                raise ClientDisconnected("the client went away")
            body = message.get("body", b"")
            if isinstance(body, str):
                raise TypeError("the response body must be bytes, not str")
            if type(body) is not bytes:
                body = bytes(body)
            last = not message.get("more_body", False)
            self.body_started = True
            await self._write(body, last)
            if last:
                self._complete()
        elif kind == "http.response.pathsend":
            await self._pathsend(message["path"])
        else:
            raise RuntimeError("unexpected ASGI message %r on an http "
                               "connection" % (kind,))

    async def _pathsend(self, path):
        """The "http.response.pathsend" extension: the whole body is the
        file at path (absolute), read here in pieces as the router's
        credit lets them go."""
        if not self.started or self.done:
            raise RuntimeError("http.response.pathsend needs http.response.start "
                               "and no end before it")
        if not os.path.isabs(path):
            raise ValueError("http.response.pathsend needs an absolute path, "
                             "not %r" % (path,))
        if self.gone:
            raise ClientDisconnected("the client went away")
        with open(path, "rb") as f:
            self.body_started = True
            while True:
                piece = f.read(PATHSEND_PIECE)
                last = len(piece) < PATHSEND_PIECE
                await self._write(piece, last)
                if last:
                    break
        self._complete()

    async def _write(self, body, last):
        """All of body, as fast as the router's credit lets it go."""
        offset, size = 0, len(body)
        while True:
            try:
                offset = self.req.write(body, offset, last)
            except OSError as exc:
                # Aborted, or the channel itself failed (the router is
                # gone, the loop hears of it next): either way no one
                # will read this response.
                self.gone = True
                raise ClientDisconnected("the client went away") from exc
            if offset == size:
                return
            await self._wait()
            self._check_gone()

    def _complete(self):
        self.done = True
        if self.req.finish():
            self.worker.kick()      # finish() may have taken messages
        if self.waiters:
            self.wake()             # a receive() waiting for the end


# ------------------------------------------------------------ WebSocket

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"    # RFC 6455 1.3
WS_VERSION = "13"
WS_KEY_BYTES = 16
# settings.http.websocket.max_frame_size comes with each request (Unit's
# default is this): the largest frame, and here also the largest message
# once its fragments are joined.
WS_MAX_MESSAGE = 1 << 20
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
FIN, RSV, OPCODE, MASKED, LEN7 = 0x80, 0x70, 0x0F, 0x80, 0x7F
LEN16, LEN64 = 126, 127
CONTROL_MAX = 125
# Close codes (RFC 6455 7.4.1)
CLOSE_NORMAL, CLOSE_PROTOCOL, CLOSE_NO_STATUS, CLOSE_ABNORMAL = 1000, 1002, 1005, 1006
CLOSE_BAD_DATA, CLOSE_TOO_BIG, CLOSE_INTERNAL = 1007, 1009, 1011
STATUS_BAD_REQUEST, STATUS_FORBIDDEN, STATUS_UPGRADE_REQUIRED = 400, 403, 426
STATUS_SWITCHING = 101
HANDSHAKE_FIELDS = (b"upgrade", b"connection", b"sec-websocket-accept")


class _WsError(Exception):
    """The client broke RFC 6455: the connection closes with code."""

    def __init__(self, code, why):
        super().__init__(why)
        self.code = code


def _frame(op, payload):
    """One unmasked, final frame (a server never masks)."""
    n = len(payload)
    if n < LEN16:
        head = struct.pack("!BB", FIN | op, n)
    elif n < 1 << 16:
        head = struct.pack("!BBH", FIN | op, LEN16, n)
    else:
        head = struct.pack("!BBQ", FIN | op, LEN64, n)
    return head + payload


def _unmask(data, mask):
    """data XOR the 4-byte mask repeated, as one big-integer operation."""
    n = len(data)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little")
            ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def _close_payload(code, reason):
    if code in (CLOSE_NO_STATUS, CLOSE_ABNORMAL):
        return b""                  # codes that must not go on the wire
    return struct.pack("!H", code) + reason.encode("utf-8")[:CONTROL_MAX - 2]


def _valid_close_code(code):
    return (1000 <= code <= 1003 or 1007 <= code <= 1011
            or 3000 <= code <= 4999)


class _WebSocket(_Http):
    """One WebSocket (ASGI WebSocket spec 2.3). The request's body is the
    client's bytes once the 101 went (libwarren's tunnel), its response
    body the bytes to the client: frames are parsed from the one and built
    into the other here. Pings are answered as they come, the close
    handshake is answered, and a broken frame closes with its code
    (RFC 6455 7.4.1). settings.http.websocket comes with the request: a
    ping goes out every keepalive_interval seconds, so a live client
    answers within the read_timeout after which the router cuts it."""

    __slots__ = ("state", "inbuf", "parts", "parts_op", "parts_len",
                 "close_code", "close_reason", "connect_sent", "lock",
                 "accept_key", "max_message", "keepalive", "pinger",
                 "description")

    # RESPONDING: an HTTP answer instead of the switch ("websocket.http.
    # response" extension), its body still to come.
    CONNECTING, OPEN, CLOSED, RESPONDING = "connecting", "open", "closed", "responding"

    def __init__(self, worker, req):
        super().__init__(worker, req)
        self.state = self.CONNECTING
        self.inbuf = bytearray()
        self.parts = []             # the fragments of a message
        self.parts_op = None
        self.parts_len = 0
        self.close_code = None      # once closed: the code the app sees
        self.close_reason = ""
        self.connect_sent = False
        self.lock = asyncio.Lock()  # frames never interleave on the wire
        self.accept_key = None
        _, self.keepalive, self.max_message = req.websocket() or (0, 0, WS_MAX_MESSAGE)
        self.pinger = None
        # Made now: the request cannot describe itself once it is over.
        self.description = "WebSocket " + req.describe()

    @property
    def desc(self):
        return self.description

    # ------------------------------------------------- the handshake

    def _scope(self):
        """The scope, or None after answering a handshake that RFC 6455
        4.2.1 refuses (400, or 426 for another version)."""
        req = self.req
        scope = req.scope()
        headers = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, []).append(value)
        key = b",".join(headers.get(b"sec-websocket-key", ()))
        version = b",".join(headers.get(b"sec-websocket-version", ()))
        why = None
        try:
            if len(base64.b64decode(key, validate=True)) != WS_KEY_BYTES:
                why = "Sec-WebSocket-Key is not 16 bytes in base64"
        except ValueError:
            why = "Sec-WebSocket-Key is not base64"
        if scope["method"] != "GET":
            why = "a WebSocket handshake is a GET"
        if why is None and version.decode("latin-1").strip() != WS_VERSION:
            self._answer(STATUS_UPGRADE_REQUIRED, b"WebSocket version 13 only\n",
                         [(b"sec-websocket-version", WS_VERSION.encode())])
            return None
        if why is not None:
            self._answer(STATUS_BAD_REQUEST, why.encode() + b"\n")
            return None
        self.accept_key = base64.b64encode(
            hashlib.sha1(key.strip() + WS_GUID).digest())
        del scope["method"]
        scope["type"] = WEBSOCKET
        scope["scheme"] = "wss" if scope["scheme"] == "https" else "ws"
        scope["asgi"]["spec_version"] = WEBSOCKET_ASGI_SPEC
        scope["subprotocols"] = [
            p.strip() for v in headers.get(b"sec-websocket-protocol", ())
            for p in v.decode("latin-1").split(",") if p.strip()]
        # The app may refuse with an HTTP answer of its own (a 401 with
        # its body) rather than a bare 403.
        scope.setdefault("extensions", {})["websocket.http.response"] = {}
        return scope

    def _answer(self, status, body, headers=()):
        """An HTTP answer instead of the switch (a refusal)."""
        self.req.start(status, [(b"content-type", b"text/plain")] + list(headers))
        self.req.write(body, 0, True)
        self._complete()

    # ------------------------------------------------- the application's end

    def _returned(self):
        if self.done:
            return
        if self.state == self.RESPONDING:
            super()._returned()             # a denial cut short
            return
        if self.state == self.CONNECTING and not self.gone:
            self._answer(STATUS_FORBIDDEN, b"")    # ASGI: no accept is a 403
            return
        self._ended(CLOSE_NORMAL)

    def _failed(self, exc):
        if isinstance(exc, ClientDisconnected) and (self.gone or self.done):
            if not self.done:
                self.req.abort()    # the client left: nothing to report
            return
        if self.done:
            _w.log_exception("exception in the application after its "
                             "WebSocket closed (%s)" % self.desc, exc)
            return
        if self.state in (self.CONNECTING, self.RESPONDING):
            super()._failed(exc)            # 500 (or cut), nothing switched
            return
        _w.log_exception("exception in the application (%s), closed "
                         "with 1011" % self.desc, exc)
        self._ended(CLOSE_INTERNAL)

    def _ended(self, code):
        """The application is over while the socket is open: close it
        with code, without waiting (nothing reads any more)."""
        if self.gone or self.req.aborted():
            self.req.abort()
            return
        if self.state == self.OPEN:
            try:
                self.req.write(_frame(OP_CLOSE, _close_payload(code, "")), 0, True)
            except OSError:
                self.req.abort()
                return
        self.state = self.CLOSED
        self._complete()

    # ------------------------------------------------- receive

    async def receive(self):
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        while True:
            if self.close_code is not None:
                return self._disconnect()
            if self.gone or self.req.aborted():
                self.gone = True
                self.close_code = CLOSE_ABNORMAL
                continue
            if self.state == self.OPEN:
                try:
                    event = await self._next_message()
                except _WsError as exc:
                    await self._close(exc.code, str(exc))
                    continue
                if event is not None:
                    return event
            await self._wait()

    def _disconnect(self):
        return {"type": "websocket.disconnect", "code": self.close_code,
                "reason": self.close_reason}

    async def _next_message(self):
        """A whole message from what arrived, or None (wait for more)."""
        while True:
            event = await self._parse()
            if event is not None or self.close_code is not None:
                return event
            try:
                data = self.req.read()
            except OSError:
                self.gone = True
                self.close_code = CLOSE_ABNORMAL
                return None
            if data is None:
                return None
            if not data:                # the tunnel ended under us
                self.gone = True
                self.close_code = CLOSE_ABNORMAL
                return None
            self.inbuf += data

    async def _parse(self):
        """Takes frames off inbuf until a message is whole (its event) or
        a frame is incomplete (None). Control frames are handled here."""
        buf = self.inbuf
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            op, n, at = b0 & OPCODE, b1 & LEN7, 2
            if n == LEN16:
                if len(buf) < 4:
                    return None
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == LEN64:
                if len(buf) < 10:
                    return None
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            if b0 & RSV:
                raise _WsError(CLOSE_PROTOCOL, "reserved bits set")
            if not b1 & MASKED:
                raise _WsError(CLOSE_PROTOCOL, "client frame not masked")
            if op >= OP_CLOSE:
                if not b0 & FIN or n > CONTROL_MAX or op > OP_PONG:
                    raise _WsError(CLOSE_PROTOCOL, "bad control frame")
            elif op not in (OP_CONT, OP_TEXT, OP_BINARY):
                raise _WsError(CLOSE_PROTOCOL, "unknown opcode %d" % op)
            elif (op == OP_CONT) != (self.parts_op is not None):
                raise _WsError(CLOSE_PROTOCOL, "fragments out of order")
            if op < OP_CLOSE and self.parts_len + n > self.max_message:
                raise _WsError(CLOSE_TOO_BIG, "message over %d bytes"
                               % self.max_message)
            if len(buf) < at + 4 + n:
                return None
            payload = _unmask(bytes(buf[at + 4:at + 4 + n]), bytes(buf[at:at + 4]))
            del buf[:at + 4 + n]
            if op == OP_PING:
                await self._send_frame(_frame(OP_PONG, payload))
            elif op == OP_CLOSE:
                await self._client_close(payload)
                return None
            elif op != OP_PONG:
                event = self._fragment(op, payload, b0 & FIN)
                if event is not None:
                    return event
        return None

    def _fragment(self, op, payload, fin):
        if op != OP_CONT:
            self.parts_op = op
        self.parts.append(payload)
        self.parts_len += len(payload)
        if not fin:
            return None
        data = b"".join(self.parts)
        op, self.parts, self.parts_op, self.parts_len = self.parts_op, [], None, 0
        if op == OP_BINARY:
            return {"type": "websocket.receive", "bytes": data, "text": None}
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise _WsError(CLOSE_BAD_DATA, "text message not UTF-8") from None
        return {"type": "websocket.receive", "bytes": None, "text": text}

    async def _client_close(self, payload):
        """The client's close: answered with its code, and the end."""
        code, reason = CLOSE_NO_STATUS, ""
        if len(payload) == 1:
            raise _WsError(CLOSE_PROTOCOL, "close frame of one byte")
        if payload:
            code = struct.unpack("!H", payload[:2])[0]
            try:
                reason = payload[2:].decode("utf-8")
            except UnicodeDecodeError:
                raise _WsError(CLOSE_BAD_DATA, "close reason not UTF-8") from None
            if not _valid_close_code(code):
                raise _WsError(CLOSE_PROTOCOL, "close code %d" % code)
        await self._close(code, reason, echo=payload[:2])

    async def _close(self, code, reason, echo=None):
        """Sends the close frame (the client's code echoed, or ours) and
        ends the tunnel: the router closes the connection after it."""
        self.close_code, self.close_reason = code, reason
        if self.state != self.OPEN:
            return
        self.state = self.CLOSED
        payload = echo if echo is not None else _close_payload(code, reason)
        try:
            await self._send_frame(_frame(OP_CLOSE, payload), last=True)
        except ClientDisconnected:
            pass
        if not self.done:
            self._complete()

    # ------------------------------------------------- send

    async def send(self, message):
        kind = message["type"]
        if kind == "websocket.accept":
            self._accept(message)
        elif kind == "websocket.send":
            if self.state != self.OPEN:
                raise ClientDisconnected("the WebSocket is %s" % (
                    "not accepted yet" if self.state == self.CONNECTING
                    else "closed"))
            data, text = message.get("bytes"), message.get("text")
            if (data is None) == (text is None):
                raise TypeError("websocket.send needs one of bytes or text")
            if text is not None:
                frame = _frame(OP_TEXT, text.encode("utf-8"))
            else:
                frame = _frame(OP_BINARY, bytes(data))
            await self._send_frame(frame)
        elif kind == "websocket.http.response.start":
            if self.state != self.CONNECTING or self.done:
                raise RuntimeError("websocket.http.response.start after the "
                                   "handshake was answered")
            self.req.start(message["status"], message.get("headers", ()))
            self.started = True
            self.state = self.RESPONDING
        elif kind == "websocket.http.response.body":
            if self.state != self.RESPONDING or self.done:
                raise RuntimeError("websocket.http.response.body without "
                                   "websocket.http.response.start, or after "
                                   "its end")
            body = message.get("body", b"")
            if isinstance(body, str):
                raise TypeError("the response body must be bytes, not str")
            last = not message.get("more_body", False)
            self.body_started = True
            await self._write(bytes(body), last)
            if last:
                self.close_code = CLOSE_NORMAL    # receive(): disconnect
                self._complete()
        elif kind == "websocket.close":
            code = message.get("code") or CLOSE_NORMAL
            reason = message.get("reason") or ""
            if self.state == self.CONNECTING:
                self._answer(STATUS_FORBIDDEN, b"")
                self.close_code = code
            elif self.state == self.OPEN:
                await self._close(code, reason)
            else:
                raise ClientDisconnected("the WebSocket is closed")
        else:
            raise RuntimeError("unexpected ASGI message %r on a WebSocket"
                               % (kind,))

    def _accept(self, message):
        if self.state != self.CONNECTING or self.done:
            raise RuntimeError("websocket.accept sent twice or too late")
        headers = [(b"upgrade", b"websocket"),
                   (b"sec-websocket-accept", self.accept_key)]
        sub = message.get("subprotocol")
        if sub is not None:
            headers.append((b"sec-websocket-protocol", sub.encode("latin-1")))
        for name, value in message.get("headers") or ():
            if bytes(name).lower() not in HANDSHAKE_FIELDS:
                headers.append((bytes(name), bytes(value)))
        self.req.start(STATUS_SWITCHING, headers)
        self.req.write(b"", 0, False)     # the head alone: the switch
        self.started = True
        self.state = self.OPEN
        self.wake()                 # a receive() waiting for the switch
        if self.keepalive > 0:
            self.pinger = self.worker.loop.create_task(self._keepalive())

    async def _keepalive(self):
        """A ping every keepalive_interval seconds while the socket is open
        (the client's pong is what keeps the router's read_timeout off)."""
        try:
            while True:
                await asyncio.sleep(self.keepalive)
                if self.state != self.OPEN or self.done:
                    return
                await self._send_frame(_frame(OP_PING, b""))
        except ClientDisconnected:
            return

    def _complete(self):
        if self.pinger is not None:
            self.pinger.cancel()
            self.pinger = None
        super()._complete()

    async def _send_frame(self, frame, last=False):
        async with self.lock:
            if self.done or self.gone:
                raise ClientDisconnected("the client went away")
            self.body_started = True
            await self._write(frame, last)


# ------------------------------------------------------------ a worker

class _Worker:
    def __init__(self, loop, targets, kinds):
        self.loop = loop
        self.lifespans = []
        self.apps = []              # per target: (app, kind, lifespan)
        by_app = {}
        for (name, app), kind in zip(targets, kinds):
            lifespan = by_app.get(id(app))
            if lifespan is None:
                lifespan = _Lifespan(loop, app, kind, name)
                by_app[id(app)] = lifespan
                self.lifespans.append(lifespan)
            self.apps.append((app, kind, lifespan))
        self.chan = None
        self.fd = -1
        self.active = set()         # requests being served
        self.waiting = set()        # those with a receive/send waiting
        self.closed = None          # future: the exit status
        self.kicked = False

    async def run(self):
        started = []
        for lifespan in self.lifespans:
            if not await lifespan.startup():
                await self._shutdown(started)
                return _w.EXIT_APP
            started.append(lifespan)
        try:
            self.chan = _w.connect(_w.STREAMS)
        except OSError as exc:
            _w.log("cannot reach the router: %s: %s"
                   % (exc.filename, exc.strerror))
            return _w.EXIT_NO_ROUTER
        status = await self._serve()
        await self._shutdown(started)
        return status

    async def _shutdown(self, lifespans):
        for lifespan in reversed(lifespans):
            await lifespan.shutdown()

    async def _serve(self):
        self.fd = self.chan.fileno()
        self.closed = self.loop.create_future()
        self.loop.add_reader(self.fd, self._readable)
        status = await self.closed
        # The router is gone: what was being served cannot be answered.
        tasks = [h.task for h in self.active]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.chan.close()
        return status

    def _end(self, status):
        # A closed channel stays readable: stop watching it at once.
        self.loop.remove_reader(self.fd)
        if not self.closed.done():
            self.closed.set_result(status)

    def _readable(self):
        try:
            open_ = self.chan.poll()
        except OSError as exc:
            _w.log("channel failed: %s" % exc)
            self._end(_w.EXIT_CHANNEL)
            return
        if not open_:
            self._end(_w.EXIT_OK)
            return
        self._dispatch()

    def kick(self):
        """Look at the channel's state again soon, without input."""
        if not self.kicked:
            self.kicked = True
            self.loop.call_soon(self._dispatch)

    def _dispatch(self):
        self.kicked = False
        if self.closed.done():
            return
        while True:
            req = self.chan.accept()
            if req is None:
                break
            upgrade = req.upgrade()
            ws = upgrade is not None and WEBSOCKET in upgrade.lower()
            http = (_WebSocket if ws else _Http)(self, req)
            self.active.add(http)
            http.task = self.loop.create_task(http.run())
        if self.waiting:
            waiting, self.waiting = self.waiting, set()
            for http in waiting:
                http.wake()


def serve(targets, kinds):
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(_Worker(loop, targets, kinds).run())
    finally:
        _close(loop)


def _close(loop):
    """What the application left running is cancelled, then the loop
    closed (as asyncio.run does)."""
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks,
                                               return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    asyncio.set_event_loop(None)
    loop.close()

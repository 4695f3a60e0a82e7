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
"""

import inspect

import _warren_asgi as _w

# The event loop's module: imported once the application is known to be
# ASGI (in the zygote, so its workers share it), never for a WSGI one.
asyncio = None

ASGI3, ASGI2 = "asgi3", "asgi2"
LIFESPAN_ASGI = {"version": "3.0", "spec_version": "2.0"}
WEBSOCKET = "websocket"
NOT_IMPLEMENTED = 501
WEBSOCKET_REFUSAL = b"WebSocket is not supported\n"


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
            upgrade = req.upgrade()
            if upgrade is not None and WEBSOCKET in upgrade.lower():
                self._refuse_websocket()
                return
            self.scope = scope = req.scope()
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

    def _refuse_websocket(self):
        self.req.start(NOT_IMPLEMENTED, [(b"content-type", b"text/plain")])
        self.req.write(WEBSOCKET_REFUSAL, 0, True)
        self._complete()

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
        else:
            raise RuntimeError("unexpected ASGI message %r on an http "
                               "connection" % (kind,))

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
            http = _Http(self, req)
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

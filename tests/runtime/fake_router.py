"""A fake Warren router for the runtime tests: it starts a worker program
with a SOCK_SEQPACKET channel and speaks src/lib/proto.h to it by hand,
checking every rule the real router relies on (framing, stream lifecycle,
flow-control windows both ways).

Wire format (proto.h): every datagram is a header `=HHII` (type, flags,
stream, len; host byte order) followed by `len` payload bytes.
"""

import os
import select
import socket
import struct
import subprocess
import time

PROTO_VERSION = 4
F_END, F_BODY, F_UPGRADE = 0x1, 0x2, 0x4   # proto.h flags (version 3)
MAX_PAYLOAD = 64 * 1024
MAX_STREAMS = 64           # WR_APP_MAX_STREAMS
WINDOW_INIT = 256 * 1024

HELLO, REQ_HEAD, REQ_BODY, REQ_END, RESP_HEAD, RESP_BODY, RESP_END, \
    ABORT, WINDOW = range(1, 10)
TYPE_NAMES = {
    HELLO: "HELLO", REQ_HEAD: "REQ_HEAD", REQ_BODY: "REQ_BODY",
    REQ_END: "REQ_END", RESP_HEAD: "RESP_HEAD", RESP_BODY: "RESP_BODY",
    RESP_END: "RESP_END", ABORT: "ABORT", WINDOW: "WINDOW",
}

HDR = struct.Struct("=HHII")
U32 = struct.Struct("=I")

WAIT_S = 10.0           # a message that must come
# Body chunks of an odd size, so they straddle the worker's buffers.
BODY_CHUNK = MAX_PAYLOAD - 1000


class ProtocolError(AssertionError):
    pass


def encode_str(s):
    if isinstance(s, str):
        s = s.encode("latin-1")
    return U32.pack(len(s)) + s


def encode_head(method="GET", target=None, path="/", query="",
                version="HTTP/1.1", remote_addr="192.0.2.7",
                remote_port="41000", local_addr="127.0.0.1",
                local_port="8080", server_name="example.com",
                scheme="http", target_name="", headers=()):
    """REQ_HEAD payload, field by field as proto.h lists them."""
    if target is None:
        raw = path if isinstance(path, bytes) else path.encode("latin-1")
        q = query if isinstance(query, bytes) else query.encode("latin-1")
        target = raw + (b"?" + q if q else b"")
    fixed = [method, target, path, query, version, remote_addr, remote_port,
             local_addr, local_port, server_name, scheme, target_name]
    out = b"".join(encode_str(f) for f in fixed)
    out += U32.pack(len(headers))
    for name, value in headers:
        out += encode_str(name) + encode_str(value)
    return out


def resp_head_len(payload):
    """Where the encoded head at the start of payload ends."""
    if len(payload) < 8:
        raise ProtocolError("RESP_HEAD shorter than 8 bytes")
    (count,) = U32.unpack_from(payload, 4)
    at = 8
    for _ in range(2 * count):
        if at + 4 > len(payload):
            raise ProtocolError("RESP_HEAD string runs past the end")
        (n,) = U32.unpack_from(payload, at)
        at += 4 + n
    if at > len(payload):
        raise ProtocolError("RESP_HEAD string runs past the end")
    return at


def decode_resp_head(payload):
    if len(payload) < 8:
        raise ProtocolError("RESP_HEAD shorter than 8 bytes")
    status, count = struct.unpack_from("=II", payload, 0)
    at, fields = 8, []
    for _ in range(count):
        pair = []
        for _ in range(2):
            (n,) = U32.unpack_from(payload, at)
            at += 4
            if at + n > len(payload):
                raise ProtocolError("RESP_HEAD string runs past the end")
            pair.append(payload[at:at + n].decode("latin-1"))
            at += n
        fields.append(tuple(pair))
    if at != len(payload):
        raise ProtocolError("RESP_HEAD has %d trailing bytes"
                            % (len(payload) - at))
    return status, fields


class Response:
    def __init__(self):
        self.status = None
        self.headers = []
        self.chunks = []            # RESP_BODY payloads, in order
        self.chunk_at = []          # request body bytes sent when each came
        self.end = None             # "END" or "ABORT"
        self.grants = 0             # WINDOW messages for the request body
        self.granted = 0            # bytes granted by them
        self.body_sent = 0

    @property
    def body(self):
        return b"".join(self.chunks)

    def header(self, name):
        for n, v in self.headers:
            if n.lower() == name.lower():
                return v
        return None

    def __repr__(self):
        return "<Response %s %r %d bytes %s>" % (
            self.status, self.headers, len(self.body), self.end)


class Worker:
    """One worker process and the router's end of its channel."""

    def __init__(self, binary, env, cwd=None, stderr_path=None):
        self.sock, child = socket.socketpair(socket.AF_UNIX,
                                             socket.SOCK_SEQPACKET)
        full_env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
                    "WARREN_CHANNEL_FD": str(child.fileno()),
                    "WARREN_APP_NAME": "test", "WARREN_WORKER_ID": "1"}
        for passed in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC"):
            if passed in os.environ:
                full_env[passed] = os.environ[passed]
        for key, value in env.items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        self.stderr_path = stderr_path
        self._err = open(stderr_path, "wb") if stderr_path else None
        self.proc = subprocess.Popen(
            [binary], env=full_env, cwd=cwd, pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL, stderr=self._err)
        child.close()
        self.reset_state()

    def reset_state(self):
        """The router's view of a fresh channel."""
        self.next_stream = 1
        self.hello = None
        self.pending = []       # the rest of a folded datagram, unfolded
        self.datagrams = []     # (type, flags) of every datagram received

    # ------------------------------------------------------------ messages

    def send(self, mtype, stream, payload=b"", flags=0):
        self.sock.sendall(HDR.pack(mtype, flags, stream, len(payload))
                          + payload)

    def recv(self, timeout=WAIT_S):
        """(type, stream, payload), or None when the worker closed. A
        folded datagram comes out as the messages it stands for."""
        if self.pending:
            return self.pending.pop(0)
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            raise ProtocolError("no message from the worker in %ss"
                                % timeout)
        data = self.sock.recv(HDR.size + MAX_PAYLOAD + 1)
        if not data:
            return None
        return self._decode(data)

    def _decode(self, data):
        if len(data) < HDR.size:
            raise ProtocolError("datagram of %d bytes" % len(data))
        mtype, flags, stream, n = HDR.unpack_from(data)
        payload = data[HDR.size:]
        if n != len(payload):
            raise ProtocolError("len %d but %d payload bytes"
                                % (n, len(payload)))
        if n > MAX_PAYLOAD:
            raise ProtocolError("payload over MAX_PAYLOAD")
        allowed = {RESP_HEAD: F_END | F_BODY, RESP_BODY: F_END}.get(mtype, 0)
        if flags & ~allowed:
            raise ProtocolError("flags %d on %s" % (flags,
                                                    TYPE_NAMES.get(mtype)))
        self.datagrams.append((mtype, flags))
        if flags:
            return self._unfold(mtype, flags, stream, payload)
        if mtype in (RESP_END, ABORT) and n != 0:
            raise ProtocolError("%s with payload" % TYPE_NAMES[mtype])
        if mtype == WINDOW:
            if n != 4 or U32.unpack(payload)[0] == 0:
                raise ProtocolError("bad WINDOW")
        return mtype, stream, payload

    def _unfold(self, mtype, flags, stream, payload):
        msgs = []
        if flags & F_BODY:
            at = resp_head_len(payload)
            msgs += [(mtype, stream, payload[:at]),
                     (RESP_BODY, stream, payload[at:])]
        else:
            msgs.append((mtype, stream, payload))
        if flags & F_END:
            msgs.append((RESP_END, stream, b""))
        self.pending = msgs[1:]
        return msgs[0]

    def expect_hello(self):
        msg = self.recv()
        if msg is None:
            raise ProtocolError("worker exited before HELLO")
        mtype, stream, payload = msg
        assert (mtype, stream) == (HELLO, 0), msg
        version, pid, streams, tunnels = struct.unpack("=IIII", payload)
        assert version == PROTO_VERSION
        assert pid == self.proc.pid
        assert 1 <= streams <= MAX_STREAMS
        assert tunnels <= MAX_STREAMS - streams
        self.hello = (version, pid)
        self.streams = streams
        self.tunnels = tunnels

    def expect_exit(self, timeout=WAIT_S):
        """The worker closes the channel without HELLO and exits."""
        msg = self.recv(timeout)
        assert msg is None, "expected no message, got %r" % (msg,)
        return self.proc.wait(timeout)

    def stderr(self):
        if self._err and not self._err.closed:
            self._err.flush()
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self, timeout=WAIT_S):
        """Closes the channel (a worker's cue to exit); its exit status."""
        self.sock.close()
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            if self._err:
                self._err.close()

    # ------------------------------------------------------------- requests

    def request(self, method="GET", path="/", body=b"", headers=(),
                chunk=BODY_CHUNK, **head):
        """Sends one request and reads the whole response, honouring and
        checking the windows; returns a Response."""
        stream = self.next_stream
        self.next_stream += 1
        # No body: the head closes our direction (F_END), as the router does.
        self.send(REQ_HEAD, stream, encode_head(method=method, path=path,
                                                headers=headers, **head),
                  flags=0 if body else F_END)
        return Exchange(self, stream, body, chunk, in_open=bool(body)).run()


class Exchange:
    """One stream: sends the body within the worker's credit while taking
    what the worker sends, until both directions are closed."""

    def __init__(self, worker, stream, body, chunk, in_open=True):
        self.w = worker
        self.stream = stream
        self.body = body
        self.chunk = chunk
        self.sent = 0
        self.credit = WINDOW_INIT     # request body bytes we may send
        self.out_credit = WINDOW_INIT  # response bytes the worker may send
        self.in_open = in_open        # our direction (REQ_*)
        self.out_open = True          # the worker's (RESP_*)
        self.resp = Response()
        self.deadline = time.monotonic() + 4 * WAIT_S

    def run(self):
        while self.in_open or self.out_open:
            if time.monotonic() > self.deadline:
                raise ProtocolError("exchange did not end: %r" % self.resp)
            can_send = self.in_open and (self.sent == len(self.body)
                                         or self.credit > 0)
            if self.w.pending:
                self._take()
                continue
            wr = [self.w.sock] if can_send else []
            rd, wr, _ = select.select([self.w.sock], wr, [], WAIT_S)
            if rd:
                self._take()
            elif wr:
                self._send_some()
            elif not rd and not wr:
                raise ProtocolError("stalled: %r, sent %d, credit %d"
                                    % (self.resp, self.sent, self.credit))
        self.resp.body_sent = self.sent
        return self.resp

    def _send_some(self):
        if self.sent == len(self.body):
            self.w.send(REQ_END, self.stream)
            self.in_open = False
            return
        k = min(len(self.body) - self.sent, self.chunk, self.credit)
        self.w.send(REQ_BODY, self.stream,
                    self.body[self.sent:self.sent + k])
        self.sent += k
        self.credit -= k

    def _take(self):
        msg = self.w.recv()
        if msg is None:
            raise ProtocolError("worker closed the channel mid-request "
                                "(%r)" % self.resp)
        mtype, stream, payload = msg
        if stream != self.stream:
            # WINDOW and ABORT may cross the end of an earlier stream.
            if mtype in (WINDOW, ABORT) and stream < self.stream:
                return
            raise ProtocolError("%s for stream %d during stream %d"
                                % (TYPE_NAMES.get(mtype), stream,
                                   self.stream))
        getattr(self, "_on_" + TYPE_NAMES[mtype].lower(),
                self._on_unexpected)(mtype, payload)

    def _on_unexpected(self, mtype, payload):
        raise ProtocolError("unexpected %s" % TYPE_NAMES.get(mtype, mtype))

    def _on_window(self, mtype, payload):
        (n,) = U32.unpack(payload)
        if not self.in_open:
            return
        self.credit += n
        self.resp.grants += 1
        self.resp.granted += n
        # Credit comes back only for bytes the worker took: it never has
        # more than its window buffered (no read-ahead past the window).
        if self.resp.granted > self.sent:
            raise ProtocolError("granted %d bytes but only %d were sent"
                                % (self.resp.granted, self.sent))
        if self.credit > WINDOW_INIT:
            raise ProtocolError("credit above the initial window")

    def _check_out_open(self, what):
        if not self.out_open:
            raise ProtocolError("%s after the worker closed its side" % what)

    def _on_resp_head(self, mtype, payload):
        self._check_out_open("RESP_HEAD")
        if self.resp.status is not None:
            raise ProtocolError("second RESP_HEAD")
        self.resp.status, self.resp.headers = decode_resp_head(payload)

    def _on_resp_body(self, mtype, payload):
        self._check_out_open("RESP_BODY")
        if self.resp.status is None:
            raise ProtocolError("RESP_BODY before RESP_HEAD")
        if len(payload) > self.out_credit:
            raise ProtocolError("RESP_BODY beyond the granted window")
        self.out_credit -= len(payload)
        self.resp.chunks.append(payload)
        self.resp.chunk_at.append(self.sent)
        # A router grants as it passes bytes on to the client.
        self.w.send(WINDOW, self.stream, U32.pack(len(payload)))
        self.out_credit += len(payload)

    def _on_resp_end(self, mtype, payload):
        self._check_out_open("RESP_END")
        if self.resp.status is None:
            raise ProtocolError("RESP_END before RESP_HEAD")
        self.out_open = False
        self.resp.end = "END"

    def _on_abort(self, mtype, payload):
        if self.out_open:
            self.out_open = False
            self.resp.end = "ABORT"
        # proto.h: who gets ABORT with its own direction open closes it so.
        if self.in_open:
            self.w.send(ABORT, self.stream)
            self.in_open = False


class Concurrent:
    """Several streams at once on one worker, as the router runs a worker
    whose HELLO offers several (its threads): each stream is an Exchange,
    the channel is read for all of them, and each body goes out within its
    own window. start() opens streams; run() drives them all to their end.
    """

    def __init__(self, worker):
        self.w = worker
        self.open = {}          # stream -> Exchange, until both sides end
        self.done = {}          # stream -> Response

    def start(self, method="GET", path="/", body=b"", headers=(),
              chunk=BODY_CHUNK, **head):
        """Sends a request head (the body follows in run()); its stream."""
        if len(self.open) >= MAX_STREAMS:
            raise ProtocolError("a router never opens more than %d streams"
                                % MAX_STREAMS)
        stream = self.w.next_stream
        self.w.next_stream += 1
        self.w.send(REQ_HEAD, stream, encode_head(method=method, path=path,
                                                  headers=headers, **head),
                    flags=0 if body else F_END)
        self.open[stream] = Exchange(self.w, stream, body, chunk,
                                     in_open=bool(body))
        return stream

    def abort(self, stream):
        """The client left: ABORT, as the router sends it."""
        ex = self.open[stream]
        if ex.in_open or ex.out_open:
            self.w.send(ABORT, stream)
            ex.in_open = False

    def run(self, until=None):
        """Drives every open stream until all ended (or until the stream
        `until` ended); returns {stream: Response} of those that ended."""
        deadline = time.monotonic() + 4 * WAIT_S
        self._collect()
        while self.open and (until is None or until in self.open):
            if time.monotonic() > deadline:
                raise ProtocolError("streams did not end: %r" % {
                    s: e.resp for s, e in self.open.items()})
            senders = [e for e in self.open.values()
                       if e.in_open and (e.sent == len(e.body) or e.credit > 0)]
            if self.w.pending:
                self._take()
                self._collect()
                continue
            rd, wr, _ = select.select([self.w.sock],
                                      [self.w.sock] if senders else [], [],
                                      WAIT_S)
            if rd:
                self._take()
            elif wr:
                senders[0]._send_some()
                # Round robin: the next sender goes first next time.
                s = senders[0].stream
                self.open[s] = self.open.pop(s)
            else:
                raise ProtocolError("stalled: %r" % {
                    s: e.resp for s, e in self.open.items()})
            self._collect()
        return self.done

    def _collect(self):
        """Moves the streams both sides ended to done."""
        for s in [s for s, e in self.open.items()
                  if not (e.in_open or e.out_open)]:
            ex = self.open.pop(s)
            ex.resp.body_sent = ex.sent
            self.done[s] = ex.resp

    def _take(self):
        msg = self.w.recv()
        if msg is None:
            raise ProtocolError("worker closed the channel with streams "
                                "open: %r" % list(self.open))
        mtype, stream, payload = msg
        ex = self.open.get(stream)
        if ex is None:
            # WINDOW and ABORT may cross the end of a stream.
            if mtype in (WINDOW, ABORT) and stream < self.w.next_stream:
                return
            raise ProtocolError("%s for stream %d, not open"
                                % (TYPE_NAMES.get(mtype), stream))
        getattr(ex, "_on_" + TYPE_NAMES[mtype].lower(),
                ex._on_unexpected)(mtype, payload)

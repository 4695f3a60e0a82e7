"""WebSocket for ASGI applications (ASGI WebSocket spec 2.3, RFC 6455): the
handshake checked and answered, frames parsed and built by the runtime on
the tunnel the router opens after the 101, pings answered, the close
handshake both ways, broken frames closed with their code, refusals as
HTTP answers, and a WSGI application still answering an upgrade request as
a plain one. The client below speaks RFC 6455 by hand: no library between
the test and the bytes."""

import os
import shutil
import struct

import pytest

import http_helpers as hh
import warren_helpers as wh
from ws_helpers import (BROKEN_FRAMES, BINARY, CLOSE, CONT, PING, TEXT, WS, answer_pings, lines as events,
                        recv_past_pings, reversing_echo)

MAX_MESSAGE = 1 << 20

APP = r'''
import os

LOG = os.path.join(os.path.dirname(__file__), "events.txt")


def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\n")


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            await send({"type": msg["type"] + ".complete"})
            if msg["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"plain http\n"})
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/reject":
        await send({"type": "websocket.close"})
        return
    if path == "/noaccept":
        return
    if path == "/boom-before":
        raise RuntimeError("before accept")
    if path.startswith("/deny"):
        # The "websocket.http.response" extension: an answer of the app's own.
        assert "websocket.http.response" in scope["extensions"]
        await send({"type": "websocket.http.response.start", "status": 401,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"www-authenticate", b"Bearer")]})
        if path == "/deny-cut":
            await send({"type": "websocket.http.response.body", "body": b"partial",
                        "more_body": True})
            return
        await send({"type": "websocket.http.response.body", "body": b"log in ",
                    "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"first\n"})
        note("%s after denial %s" % (path, (await receive())["type"]))
        try:
            await send({"type": "websocket.accept"})
        except RuntimeError:
            note("%s accept refused" % path)
        return
    sub = scope["subprotocols"][-1] if scope["subprotocols"] else None
    info = "%s %s %s %s %s" % (scope["scheme"], scope["path"],
                               scope["query_string"].decode(),
                               ",".join(scope["subprotocols"]),
                               "method" in scope)
    await send({"type": "websocket.accept", "subprotocol": sub,
                "headers": [(b"x-scope", info.encode())]})
    if path == "/hello-close":
        await send({"type": "websocket.send", "text": "hello"})
        await send({"type": "websocket.close", "code": 4001, "reason": "bye now"})
        return
    if path == "/boom":
        raise RuntimeError("after accept")
    if path == "/close-then-boom":
        await send({"type": "websocket.close", "code": 4002})
        raise RuntimeError("after close")
    if path == "/return":
        return
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            note("%s disconnect %d" % (path, msg["code"]))
            return
        if msg["text"] is not None:
            await send({"type": "websocket.send", "text": msg["text"][::-1]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})
'''

WSGI = '''
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    out = ("%s upgrade=%s body=%d\\n" % (environ["PATH_INFO"],
           environ.get("HTTP_UPGRADE", "-"), len(body))).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [out]
'''


def start(warren_factory, settings=None):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-py-")
    hh.write(appdir, "ws_asgi.py", APP)
    hh.write(appdir, "plain_wsgi.py", WSGI)
    events = os.path.join(appdir, "events.txt")
    open(events, "w").close()
    os.chmod(events, 0o666)
    w = warren_factory(extra_args=["--modulesdir", rt])
    port = hh.setup(w, [
        {"match": {"uri": "/wsgi/*"}, "action": {"pass": "applications/wsgi"}},
        {"action": {"pass": "applications/ws"}}], settings=settings, extra={"applications": {
            "ws": {"type": "python", "path": appdir, "module": "ws_asgi",
                   "processes": 1},
            "wsgi": {"type": "python", "path": appdir, "module": "plain_wsgi",
                     "processes": 1}}})
    return w, port, events, [rt, appdir]


@pytest.fixture
def wsa(warren_factory):
    w, port, events, dirs = start(warren_factory)
    yield w, port, events
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)


def test_handshake_scope_and_echo(wsa):
    w, port, ev = wsa
    with WS(port, "/chat?room=1", protocols=["v1.chat", "v2.chat"]) as ws:
        ws.check_accepted("v2.chat")
        assert ws.r.header("X-Scope") == "ws /chat room=1 v1.chat,v2.chat False"
        reversing_echo(ws)
        assert ws.c.closed()
    assert wh.wait_for(lambda: "/chat disconnect 1000" in events(ev), 5.0), events(ev)


def test_message_size_limit(wsa):
    w, port, ev = wsa
    with WS(port, "/big") as ws:
        data = os.urandom(MAX_MESSAGE)
        ws.send(BINARY, data)
        assert ws.recv() == (True, BINARY, data)
        ws.send(BINARY, b"x" * (MAX_MESSAGE - 10), fin=False)
        ws.send(CONT, b"y" * 11)
        assert ws.close_code()[0] == 1009
        assert ws.c.closed()
    assert wh.wait_for(lambda: "/big disconnect 1009" in events(ev), 5.0), events(ev)


@pytest.mark.parametrize("frame,code", BROKEN_FRAMES + [
    (dict(op=CLOSE, payload=b"\x03"), 1002),               # one-byte close
    (dict(op=CLOSE, payload=struct.pack("!H", 1005)), 1002),  # code not for the wire
])
def test_broken_frames_close_with_their_code(wsa, frame, code):
    w, port, ev = wsa
    path = "/broken%d" % code
    with WS(port, path) as ws:
        assert ws.r.status == 101
        ws.send(**frame)
        assert ws.close_code()[0] == code
        assert ws.c.closed()
    assert wh.wait_for(lambda: "%s disconnect %d" % (path, code) in events(ev), 5.0), events(ev)


def test_close_without_code(wsa):
    w, port, ev = wsa
    with WS(port, "/nocode") as ws:
        ws.send(CLOSE)
        assert ws.close_code() == (None, b"")
        assert ws.c.closed()
    assert wh.wait_for(lambda: "/nocode disconnect 1005" in events(ev), 5.0), events(ev)


@pytest.mark.parametrize("path,status", [("/reject", 403), ("/noaccept", 403),
                                         ("/boom-before", 500)])
def test_refusals_are_http_answers(wsa, path, status):
    w, port, ev = wsa
    with WS(port, path) as ws:
        assert ws.r.status == status, (ws.r, ws.r.body)


def test_denial_response_extension(wsa):
    """ASGI's "websocket.http.response": the app answers the handshake with
    its own status, fields and streamed body; receive() then says
    disconnect and an accept is refused; the worker serves on."""
    w, port, ev = wsa
    with WS(port, "/deny") as ws:
        assert ws.r.status == 401, (ws.r, ws.r.body)
        assert ws.r.header("WWW-Authenticate") == "Bearer"
        assert ws.r.header("Upgrade") is None
        assert ws.r.body == b"log in first\n"
    assert wh.wait_for(lambda: events(ev)[-2:] == [
        "/deny after denial websocket.disconnect", "/deny accept refused"], 5.0), events(ev)
    # Returning in the middle of the body cuts the (chunked) answer: the
    # client gets what was sent, then the connection ends without the last
    # chunk (the router sends what it holds before it cuts).
    with pytest.raises(hh.HTTPError, match="chunked body cut short"):
        WS(port, "/deny-cut")
    assert wh.wait_for(lambda: "returned before its response ended" in w.log(), 5.0)
    assert hh.get(port, "/").body == b"plain http\n"


@pytest.mark.parametrize("headers,status", [
    ({"Sec-WebSocket-Key": None}, 400),
    ({"Sec-WebSocket-Key": "c2hvcnQ="}, 400),                # 5 bytes, not 16
    ({"Sec-WebSocket-Key": "not base64 at all!"}, 400),
    ({"Sec-WebSocket-Version": "8"}, 426),
])
def test_bad_handshakes(wsa, headers, status):
    w, port, ev = wsa
    with WS(port, "/chat", headers=headers) as ws:
        assert ws.r.status == status, (ws.r, ws.r.body)
        if status == 426:
            assert ws.r.header("Sec-WebSocket-Version") == "13"
    assert hh.get(port, "/").body == b"plain http\n"


def test_server_side_close_and_endings(wsa):
    w, port, ev = wsa
    with WS(port, "/hello-close") as ws:
        assert ws.recv() == (True, TEXT, b"hello")
        assert ws.close_code() == (4001, b"bye now")
        assert ws.c.closed()
    for path, code in (("/return", 1000), ("/boom", 1011)):
        with WS(port, path) as ws:
            assert ws.r.status == 101
            assert ws.close_code()[0] == code
            assert ws.c.closed()
    assert w.log_has("closed with 1011"), w.log()[-3000:]
    with WS(port, "/close-then-boom") as ws:
        assert ws.close_code()[0] == 4002
        assert ws.c.closed()
    assert wh.wait_for(lambda: "exception in the application after its WebSocket "
                       "closed (WebSocket GET /close-then-boom)" in w.log(), 5.0), w.log()[-2000:]


def test_client_vanishing_is_a_1006_and_the_worker_serves_on(wsa):
    w, port, ev = wsa
    socks = [WS(port, "/gone%d" % i) for i in range(3)]   # three at once, one worker
    try:
        for i, ws in enumerate(socks):
            ws.send(TEXT, "n%d" % i)
        for i, ws in enumerate(socks):
            assert ws.recv() == (True, TEXT, ("%dn" % i).encode())
        assert hh.get(port, "/").body == b"plain http\n"
    finally:
        for ws in socks:
            ws.close()
    for i in range(3):
        assert wh.wait_for(lambda: "/gone%d disconnect 1006" % i in events(ev), 5.0), events(ev)
    # The streams are free again: 8 more at once still fit the worker.
    more = [WS(port, "/again%d" % i) for i in range(8)]
    try:
        assert [ws.r.status for ws in more] == [101] * 8
    finally:
        for ws in more:
            ws.close()


def test_wsgi_answers_an_upgrade_request_as_a_plain_one(wsa):
    """Unit's WSGI has no WebSocket: the request reaches the application
    with an empty body, and its answer keeps the connection usable."""
    w, port, ev = wsa
    with hh.Conn(port) as c:
        r = c.request("GET", "/wsgi/x", {"Connection": "Upgrade", "Upgrade": "websocket",
                                         "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                         "Sec-WebSocket-Version": "13"})
        assert (r.status, r.body) == (200, b"/wsgi/x upgrade=websocket body=0\n"), r
        r = c.request("GET", "/wsgi/y")
        assert (r.status, r.body) == (200, b"/wsgi/y upgrade=- body=0\n"), r


def test_websocket_settings(warren_factory):
    """settings.http.websocket reaches the runtime with each upgrade: pings
    every keepalive_interval, messages over max_frame_size refused; the
    router cuts a client silent for read_timeout, and one that answers the
    pings stays."""
    w, port, ev, dirs = start(warren_factory, {"http": {"websocket": {
        "read_timeout": 2, "keepalive_interval": 1, "max_frame_size": 1000}}})
    try:
        alive = WS(port, "/alive")
        silent = WS(port, "/silent")
        try:
            assert (alive.r.status, silent.r.status) == (101, 101)
            pings = answer_pings(alive, 4.5)       # past read_timeout twice
            assert pings >= 3, pings
            alive.send(TEXT, "x" * 1000)
            assert alive.recv()[1:] == (TEXT, b"x" * 1000)
            alive.send(TEXT, "x" * 1001)
            fin, op, payload = recv_past_pings(alive)
            assert (op, struct.unpack("!H", payload[:2])[0]) == (CLOSE, 1009)
            # The silent one got its pings too, never answered: cut.
            assert _only_pings_then_eof(silent)
        finally:
            alive.close()
            silent.close()
        assert wh.wait_for(lambda: "/silent disconnect 1006" in events(ev), 5.0), events(ev)
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def _only_pings_then_eof(ws):
    """Reads what the server sent a client that never answered: pings,
    then the end of the connection."""
    try:
        while True:
            fin, op, payload = ws.recv()
            assert op == PING, (op, payload)
    except AssertionError as e:
        return "connection ended" in str(e)


def test_open_websockets_never_starve_the_other_router_thread(warren_factory):
    """With two router threads and one worker held by open WebSockets (it
    is never idle), requests accepted by the thread it is not at home in
    move to that thread and are served at once: before, they waited for
    the worker to be idle, and so did, after a few, every later request."""
    import concurrent.futures as cf
    w, port, ev, dirs = start(warren_factory, {"listen_threads": 2})
    try:
        with cf.ThreadPoolExecutor(16) as pool:
            socks = list(pool.map(lambda i: WS(port, "/held%d" % i), range(4)))
            try:
                assert [s.r.status for s in socks] == [101] * 4

                def get(i):
                    with hh.Conn(port, timeout=5.0) as c:
                        return c.request("GET", "/x%d" % i).body
                bodies = list(pool.map(get, range(48)))
                assert bodies == [b"plain http\n"] * 48
                for i, s in enumerate(socks):
                    s.send(TEXT, "still %d" % i)
                    assert s.recv() == (True, TEXT, ("%d llits" % i).encode())
            finally:
                for s in socks:
                    s.close()
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def test_open_websocket_outlives_a_reconfiguration(warren_factory):
    """A change that replaces the application lets an open WebSocket go on
    with its old worker (drained, not cut), while new requests go to the
    new generation; the old worker leaves once the socket closes."""
    w, port, ev, dirs = start(warren_factory)
    try:
        with WS(port, "/kept") as ws:
            ws.send(TEXT, "before")
            assert ws.recv() == (True, TEXT, b"erofeb")
            old = [p for p, t in w.children().items() if t == "warren: ws prototype"]
            s, j = w.put("/config/applications/ws/environment", {"GEN": "2"})
            assert s == 200, j
            assert hh.get(port, "/").body == b"plain http\n"
            new = [p for p, t in w.children().items() if t == "warren: ws prototype"]
            assert set(new) - set(old), (old, new)      # a new generation runs
            ws.send(TEXT, "after")
            assert ws.recv() == (True, TEXT, b"retfa")
            ws.send(CLOSE, struct.pack("!H", 1000))
            assert ws.close_code()[0] == 1000
        assert wh.wait_for(lambda: "/kept disconnect 1000" in events(ev), 5.0), events(ev)
        # The old generation's prototype goes once its last socket closed.
        assert wh.wait_for(lambda: not set(old) & set(
            p for p, t in w.children().items() if t == "warren: ws prototype"), 15.0)
    finally:
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)

"""ASGI applications (`type: "python"`, detected or `"protocol": "asgi"`) run
by warrend: served with lifespan state, a lifespan startup failure failing
the PUT with the application's message, a response streamed to the client
as the application produces it, a multi-MB POST echoed, lifespan shutdown
when the application goes away (WebSocket: test_python_websocket.py)."""

import hashlib
import os
import shutil

import pytest

import http_helpers as hh
import warren_helpers as wh

ASGI = '''
import hashlib, os

STATE_KEY = "greeting"


async def lifespan(scope, receive, send):
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            scope["state"][STATE_KEY] = os.environ.get("GREETING", "")
            await send({"type": "lifespan.startup.complete"})
        else:
            marker = os.environ.get("MARKER")
            if marker:
                with open(marker, "a") as f:
                    f.write("shutdown %d\\n" % os.getpid())
            await send({"type": "lifespan.shutdown.complete"})
            return


async def read_body(receive):
    body = b""
    while True:
        msg = await receive()
        body += msg.get("body", b"")
        if not msg.get("more_body"):
            return body


async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(scope, receive, send)
    body = await read_body(receive)
    if scope["path"].endswith("/echo"):
        headers = [(b"content-type", b"application/octet-stream"),
                   (b"x-sha256", hashlib.sha256(body).hexdigest().encode())]
        out = body
    else:
        headers = [(b"content-type", b"text/plain"),
                   (b"x-pid", str(os.getpid()).encode())]
        out = ("%s %s %s|%s|%s|%s|%d" % (
            scope["method"], scope["root_path"], scope["path"],
            scope["query_string"].decode(), scope["state"][STATE_KEY],
            scope["http_version"], len(body))).encode()
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})
'''

FAILING_STARTUP = '''
async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        await receive()
        await send({"type": "lifespan.startup.failed",
                    "message": "cannot reach the database at db:5432"})
'''

STREAMING = '''
import asyncio, os

async def application(scope, receive, send):
    """Sends a first chunk, then waits for the test to create the file
    named in the query before it ends: the client must get the first chunk
    while the response is still being produced."""
    go = os.path.join(os.path.dirname(__file__), scope["query_string"].decode())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"first\\n", "more_body": True})
    while not os.path.exists(go):
        await asyncio.sleep(0.02)
    for i in range(3):
        await send({"type": "http.response.body", "body": b"more %d\\n" % i,
                    "more_body": True})
    await send({"type": "http.response.body", "body": b"last\\n"})
'''

MB = 1024 * 1024


@pytest.fixture
def pya(warren_factory):
    """A warrend with warren-python in its --modulesdir, and an app directory
    user nobody can read."""
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-asgi-")
    hh.write(appdir, "hello_asgi.py", ASGI)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def app_config(appdir, **more):
    app = {"type": "python", "path": appdir, "module": "hello_asgi",
           "processes": 1, "environment": {"GREETING": "hi"}}
    app.update(more)
    return {"applications": {"a": app}}


def test_asgi_app_serves(pya):
    w, appdir = pya
    port = hh.setup(w, [{"action": {"pass": "applications/a"}}],
                    extra=app_config(appdir, prefix="/app", processes=2))
    r = hh.get(port, "/app/x/y?q=1", method="POST", body=b"12345")
    assert r.status == 200, r
    # The whole path, the prefix as root_path, the lifespan's state.
    assert r.body == b"POST /app /app/x/y|q=1|hi|1.1|5"
    assert r.header("Content-Type") == "text/plain"
    pids = {hh.get(port, "/app/").header("X-Pid") for _ in range(20)}
    assert 1 <= len(pids) <= 2
    # A chunked body reaches the application whole, in http.request events.
    r = hh.get(port, "/app/c", method="POST", headers={"Transfer-Encoding": "chunked"},
               body=b"4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n")
    assert (r.status, r.body) == (200, b"POST /app /app/c||hi|1.1|7")


def test_protocol_asgi_given(pya):
    w, appdir = pya
    port = hh.setup(w, [{"action": {"pass": "applications/a"}}],
                    extra=app_config(appdir, protocol="asgi"))
    assert hh.get(port, "/z").body == b"GET  /z||hi|1.1|0"


def test_lifespan_startup_failure_fails_the_put(pya):
    w, appdir = pya
    hh.write(appdir, "failing_asgi.py", FAILING_STARTUP)
    before = w.config_bytes()
    s, j = w.put("/config", {"applications": {"f": {
        "type": "python", "path": appdir, "module": "failing_asgi"}}})
    assert s == 500, j
    assert 'Application "f" could not start' in j["detail"], j
    assert "lifespan startup failed: cannot reach the database at db:5432" in j["detail"], j
    assert w.config_bytes() == before


def test_streaming_response(pya):
    w, appdir = pya
    hh.write(appdir, "stream_asgi.py", STREAMING)
    port = hh.setup(w, [{"action": {"pass": "applications/s"}}], extra={
        "applications": {"s": {"type": "python", "path": appdir,
                               "module": "stream_asgi"}}})
    with hh.Conn(port, timeout=10.0) as c:
        c.send(hh.build("GET", "/?go-1"))
        r = c.read_response(head_only=True)
        assert r.status == 200
        assert r.header("Transfer-Encoding") == "chunked"
        # The first chunk arrives while the application still waits.
        while b"first\n" not in c.buf:
            assert c._fill(), "connection ended before the first chunk"
        hh.write(appdir, "go-1", b"")
        assert c._read_chunked() == b"first\nmore 0\nmore 1\nmore 2\nlast\n"


def test_post_echo_of_a_multi_megabyte_body(pya):
    w, appdir = pya
    port = hh.setup(w, [{"action": {"pass": "applications/a"}}],
                    extra=app_config(appdir))
    body = os.urandom(MB) * 6 + b"tail"      # under the default max_body_size (8 MB)
    with hh.Conn(port, timeout=30.0) as c:
        r = c.request("POST", "/echo", None, body)
    assert r.status == 200
    assert r.header("X-Sha256") == hashlib.sha256(body).hexdigest()
    assert len(r.body) == len(body)
    assert r.body == body


def test_lifespan_shutdown_when_the_application_goes(pya):
    w, appdir = pya
    marker = os.path.join(appdir, "marker.txt")
    open(marker, "w").close()
    os.chmod(marker, 0o666)
    cfg = app_config(appdir)
    cfg["applications"]["a"]["environment"]["MARKER"] = marker
    port = hh.setup(w, [{"action": {"pass": "applications/a"}}], extra=cfg)
    pid = int(hh.get(port, "/").header("X-Pid"))
    s, j = w.put("/config", {"listeners": {}, "routes": [], "applications": {}})
    assert s == 200, j

    def shut_down():
        with open(marker) as f:
            return f.read().split() == ["shutdown", str(pid)]
    assert wh.wait_for(shut_down, 15.0, 0.05), open(marker).read()


def test_targets_of_asgi_and_wsgi_fail_the_put(pya):
    w, appdir = pya
    hh.write(appdir, "plain_wsgi.py",
             "def application(environ, start_response):\n"
             "    start_response('200 OK', [])\n"
             "    return [b'wsgi']\n")
    s, j = w.put("/config", {"applications": {"m": {
        "type": "python", "path": appdir, "targets": {
            "a": {"module": "hello_asgi"}, "w": {"module": "plain_wsgi"}}}}})
    assert s == 500, j
    assert 'the targets mix ASGI ("a") and WSGI ("w") applications' in j["detail"], j



PATHSEND = '''
import os

HERE = os.path.dirname(__file__)
DATA = os.path.join(HERE, "data.bin")


async def application(scope, receive, send):
    assert scope["type"] == "http"
    assert "http.response.pathsend" in scope["extensions"]
    path = {"/data": DATA, "/nolength": DATA, "/relative": "data.bin",
            "/missing": os.path.join(HERE, "missing.bin")}[scope["path"]]
    headers = [(b"content-type", b"application/octet-stream")]
    if scope["path"] == "/data":
        headers.append((b"content-length", str(os.path.getsize(DATA)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.pathsend", "path": path})
'''


@pytest.mark.parametrize("size", [0, 65536, 3 * MB + 5], ids=["empty", "one-piece", "big"])
def test_pathsend_extension(pya, size):
    """ASGI's "http.response.pathsend" (Starlette's FileResponse uses it): the
    file named is the body, with the application's Content-Length or
    chunked without one; a relative path or a missing file is the
    application's error (logged, answered 500: the head waits for the body)."""
    w, appdir = pya
    data = os.urandom(size)
    hh.write(appdir, "data.bin", data)
    hh.write(appdir, "pathsend_asgi.py", PATHSEND)
    port = hh.setup(w, [{"action": {"pass": "applications/a"}}],
                    extra=app_config(appdir, module="pathsend_asgi"))
    for path in ("/data", "/nolength", "/data"):
        with hh.Conn(port, timeout=30) as c:
            c.send(hh.build("GET", path))
            r = c.read_response()
        assert r.status == 200, r
        assert (r.header("Content-Length") is None) == (path == "/nolength"), r
        assert len(r.body) == size and r.body == data
    for path, why in (("/relative", "needs an absolute path"),
                      ("/missing", "No such file or directory")):
        w.mark_log()
        with hh.Conn(port) as c:
            c.send(hh.build("GET", path))
            r = c.read_response()
        assert r.status == 500, r                # nothing of the 200 went out
        assert wh.wait_for(lambda: why in w.log() and "answered 500" in w.log(), 5.0), \
            w.log()
    assert hh.get(port, "/data").body == data

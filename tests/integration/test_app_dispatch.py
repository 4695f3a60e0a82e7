"""Requests to an external application on libwarren (tests/apps/hello):
the router takes a worker, streams the body to it within its window and the
answer back, queues when all workers are busy, and fails cleanly when a
worker dies."""

import os
import shutil
import signal
import socket
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELLO = os.path.join(REPO, "build", "apps", "hello")


@pytest.fixture
def app(vwarren):
    """hello, copied where user nobody can run it, behind a listener."""
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "hello")
    shutil.copy(HELLO, exe)
    os.chmod(exe, 0o755)
    port = hh.setup(vwarren, [{"action": {"pass": "applications/hello"}}], extra={
        "applications": {"hello": {"type": "external", "executable": exe,
                                   "processes": 2}}})
    vwarren.hello_exe = exe         # its workers, not a retired generation's
    yield port
    del vwarren.hello_exe
    shutil.rmtree(d, ignore_errors=True)


def test_get(app):
    r = hh.get(app, "/x?y=1")
    assert r.status == 200
    assert r.body == b"Hello, world\n"
    assert r.header("Content-Type") == "text/plain"


def test_keep_alive_and_pipelining(app):
    with hh.Conn(app) as c:
        for _ in range(5):
            r = c.request("GET", "/")
            assert (r.status, r.body) == (200, b"Hello, world\n")
        c.send(hh.build("GET", "/") * 3)
        for _ in range(3):
            assert c.read_response().body == b"Hello, world\n"


def test_large_body_both_ways(app):
    body = os.urandom(3 * 1024 * 1024 + 17)
    r = hh.get(app, "/echo", method="POST", body=body,
               headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200
    assert r.header("Content-Type") == "application/octet-stream"
    assert r.body == body


def test_head_has_no_body(app):
    r = hh.get(app, "/", method="HEAD")
    assert r.status == 200
    assert r.body == b""


def test_http10_answer_closes(app):
    resp, closed = hh.raw(app, b"GET / HTTP/1.0\r\n\r\n")
    assert resp.status == 200 and resp.body == b"Hello, world\n"
    assert closed


def test_more_requests_than_workers_wait_their_turn(app):
    results = []

    def one():
        results.append(hh.get(app, "/", method="POST", body=b"x" * 200000).status)

    ts = [threading.Thread(target=one) for _ in range(12)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results == [200] * 12


def chunked(body, size):
    out = b""
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b"%x;ext=1\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\nX-Trailer: t\r\n\r\n"


def test_chunked_body_to_an_app_is_decoded(app):
    """A chunked request body reaches the application decoded (no
    Content-Length; it reads to the end), larger than the window, and a
    request pipelined behind it is served next."""
    body = os.urandom(700 * 1024 + 5)
    head = (b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: a/b\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    with hh.Conn(app) as c:
        c.send(head + chunked(body, 10000) + hh.build("GET", "/"))
        r = c.read_response()
        assert (r.status, r.header("Content-Type")) == (200, "a/b")
        assert r.body == body
        r = c.read_response()
        assert (r.status, r.body) == (200, b"Hello, world\n")
        r = c.request("POST", "/echo", {"Transfer-Encoding": "chunked",
                                        "Content-Type": "c/d"},
                      body=chunked(b"", 1))
        assert (r.status, r.body) == (200, b"")


def test_broken_chunked_body_to_an_app_is_400(vwarren, app):
    """The client's error: 400, and the worker, its stream aborted, serves
    on (it is not killed and replaced)."""
    before = two_hello_pids(vwarren)
    resp, closed = hh.raw(app, b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                               b"\r\n\r\n3\r\nabc\r\nzz\r\n\r\n")
    assert resp.status == 400
    assert closed
    for _ in range(4):
        assert hh.get(app, "/").body == b"Hello, world\n"
    assert hello_pids(vwarren) == before


def test_worker_killed_mid_request_gets_502_and_is_replaced(vwarren, app):
    # A request whose body never completes keeps its worker busy.
    s = socket.create_connection(("127.0.0.1", app))
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
    time.sleep(0.3)
    workers = [p for p, t in vwarren.children().items() if t and t.endswith("/hello")]
    assert len(workers) == 2
    for p in workers:
        os.kill(p, signal.SIGKILL)
    s.settimeout(5)
    try:
        data = hh.read_to_end(s)
    finally:
        s.close()
    # Before its head: a 502. After (hello streams its echo): the response
    # is cut short, and the client can tell: no last chunk.
    if data.startswith(b"HTTP/1.1 200 "):
        assert not data.endswith(b"0\r\n\r\n")
    else:
        assert data.startswith(b"HTTP/1.1 502 "), data
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            if hh.get(app, "/").status == 200:
                break
        except Exception:
            pass
        time.sleep(0.2)
    assert hh.get(app, "/").body == b"Hello, world\n"


def test_status_applications(vwarren, app):
    s, j = vwarren.get("/status/applications/hello")
    assert s == 200, j
    assert j["processes"]["running"] == 2 or j["processes"]["running"] == 1
    # One request held open on a worker shows as active, that worker as busy.
    c = socket.create_connection(("127.0.0.1", app))
    c.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    deadline = time.time() + 5
    while time.time() < deadline:
        s, j = vwarren.get("/status/applications/hello")
        if j["requests"]["active"] == 1 and j["processes"]["running"] == 2:
            break
        time.sleep(0.05)
    assert j == {"processes": {"running": 2, "starting": 0, "idle": 1},
                 "requests": {"active": 1}}, j
    c.sendall(b"defghij")
    c.recv(65536)
    c.close()


def hello_pids(w):
    """Workers of the app fixture's hello (an earlier test's generation may
    still be draining), or of any hello outside that fixture."""
    exe = getattr(w, "hello_exe", None)
    return sorted(p for p, t in w.children().items()
                  if t and (t == exe if exe else t.endswith("/hello")))


def two_hello_pids(w):
    """The two workers' pids, once both run (one may still be replacing a
    worker an earlier test's client left mid-response)."""
    got = wh.wait_for(lambda: (lambda p: p if len(p) == 2 else None)(hello_pids(w)), 10.0, 0.05)
    assert got, hello_pids(w)
    return got


def test_restart_starts_a_new_generation(vwarren, app):
    before = two_hello_pids(vwarren)
    conf = vwarren.config_bytes()
    s, j = vwarren.get("/control/applications/hello/restart")
    assert (s, j) == (200, {"success": "Ok"})
    deadline = time.time() + 10
    while time.time() < deadline:
        now = hello_pids(vwarren)
        if len(now) == 2 and not set(now) & set(before):
            break
        time.sleep(0.1)
    assert len(now) == 2 and not set(now) & set(before), (before, now)
    assert hh.get(app, "/").body == b"Hello, world\n"
    assert vwarren.config_bytes() == conf
    s, j = vwarren.get("/control/applications/nosuch/restart")
    assert s == 404, j


def test_generation_changes_under_load_lose_no_request(vwarren, app):
    """Requests keep flowing while the app is replaced ten times: every one
    gets a whole 200 (old generations drain, new ones take over)."""
    stop = threading.Event()
    results, errors = [], []

    def load():
        while not stop.is_set():
            try:
                with hh.Conn(app) as c:
                    for _ in range(5):
                        r = c.request("GET", "/")
                        results.append((r.status, r.body))
            except Exception as e:          # noqa: BLE001 - recorded, asserted below
                errors.append(repr(e))

    ts = [threading.Thread(target=load) for _ in range(3)]
    for t in ts:
        t.start()
    try:
        for i in range(10):
            s, j = vwarren.put("/config/applications/hello/environment", {"ROUND": str(i)})
            assert (s, j) == (200, wh.SUCCESS)
            time.sleep(0.1)
    finally:
        stop.set()
        for t in ts:
            t.join(30)
    assert errors == []
    assert len(results) > 50
    assert all(r == (200, b"Hello, world\n") for r in results), \
        [r for r in results if r != (200, b"Hello, world\n")][:3]


# ---- these two change the generation (one process): last in the module

def test_one_worker_serves_keep_alive_clients_of_every_thread(vwarren):
    """One worker, two router threads, many keep-alive clients: a freed
    worker goes straight to the next waiting connection of its own thread
    (still in that thread's epoll), yet the other thread's connections get
    their turn too (the preference is bounded), and nothing is lost."""
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "hello")
    shutil.copy(HELLO, exe)
    os.chmod(exe, 0o755)
    port = hh.setup(vwarren, [{"action": {"pass": "applications/hello"}}],
                    settings={"listen_threads": 2}, extra={
        "applications": {"hello": {"type": "external", "executable": exe,
                                   "processes": 1}}})
    results, errors = [], []

    def client():
        try:
            with hh.Conn(port) as c:
                for _ in range(25):
                    r = c.request("GET", "/")
                    results.append((r.status, r.body))
        except Exception as e:          # reported below, with the count
            errors.append(repr(e))

    ts = [threading.Thread(target=client) for _ in range(16)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    shutil.rmtree(d, ignore_errors=True)
    assert errors == []
    assert results == [(200, b"Hello, world\n")] * (16 * 25)
    # The last answer may reach its client a moment before the router
    # counts its stream closed: nothing may stay counted.
    assert wh.wait_for(lambda: vwarren.get("/status/applications/hello")[1]
                       ["requests"]["active"] == 0, 5.0), \
        vwarren.get("/status/applications/hello")


def test_access_log_lines_for_application_requests(vwarren):
    """Requests an application answered are logged like any other: the
    request line, the app's status and the body bytes it sent."""
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "hello")
    shutil.copy(HELLO, exe)
    os.chmod(exe, 0o755)
    log = os.path.join(vwarren.dir, "apps-access.log")
    port = hh.setup(vwarren, [{"action": {"pass": "applications/hello"}}], extra={
        "access_log": {"path": log, "format": "$request_line $status $body_bytes_sent"
                                              " $response_header_content_type"},
        "applications": {"hello": {"type": "external", "executable": exe,
                                   "processes": 1}}})
    with hh.Conn(port) as c:
        assert c.request("GET", "/one?x=1").status == 200
        assert c.request("HEAD", "/two").status == 200
        r = c.request("POST", "/echo", {"Content-Type": "a/b"}, body=b"z" * 70000)
        assert (r.status, len(r.body)) == (200, 70000)
    want = ["GET /one?x=1 HTTP/1.1 200 13 text/plain",
            "HEAD /two HTTP/1.1 200 0 text/plain",
            "POST /echo HTTP/1.1 200 70000 a/b"]

    def got():
        try:
            with open(log) as f:
                ls = f.read().splitlines()
        except FileNotFoundError:
            return None
        return ls if len(ls) >= len(want) else None
    ls = wh.wait_for(got, 5.0, 0.05)
    shutil.rmtree(d, ignore_errors=True)
    assert ls == want, ls


def test_worker_dying_right_after_its_whole_answer(vwarren, app):
    """A worker that sent its whole answer (Content-Length filled) and died
    before its END: the client still gets that answer, buffered head
    included, instead of a connection closed before any response. (Each
    such exit is a failure to main: the replacements come after a growing
    delay, so a few rounds only.)"""
    for _ in range(5):
        r = hh.get(app, "/exit-after-body")
        assert (r.status, r.body) == (200, b"Hello, world\n"), r
    assert hh.get(app, "/").body == b"Hello, world\n"


def test_response_headers_on_an_app_answer(vwarren, app):
    """response_headers apply to an application's answer, its fields being
    $response_header_*; names they set replace the app's."""
    hh.setup(vwarren, [{"action": {"pass": "applications/hello", "response_headers": {
        "X-Copy": "$response_header_content_type", "Content-Type": "text/x-new",
        "X-Uri": "$uri", "Server": None}}}], port=app, extra={
        "applications": {"hello": {"type": "external", "executable": vwarren.hello_exe,
                                   "processes": 2}}})
    r = hh.get(app, "/x?y=1")
    assert r.status == 200 and r.body == b"Hello, world\n", r
    assert r.header("X-Copy") == "text/plain", r
    assert r.all("Content-Type") == ["text/x-new"], r
    assert r.header("X-Uri") == "/x", r
    assert r.header("Server") is None, r


def test_response_headers_of_an_app_see_the_rewritten_request(vwarren, app):
    """After a rewrite, $uri and $args in an app's response_headers (and its
    access log line) are the rewritten ones, as for any other action."""
    log = os.path.join(vwarren.dir, "access-rw.log")
    hh.setup(vwarren, [{"action": {
        "rewrite": "/new$uri?z=2", "pass": "applications/hello",
        "response_headers": {"X-Uri": "$uri", "X-Args": "$args",
                             "X-Request-Uri": "$request_uri"}}}], port=app, extra={
        "applications": {"hello": {"type": "external", "executable": vwarren.hello_exe,
                                   "processes": 2}},
        "access_log": {"path": log, "format": "$uri $args $request_uri"}})
    r = hh.get(app, "/x?y=1")
    assert r.status == 200 and r.body == b"Hello, world\n", r
    assert r.header("X-Uri") == "/new/x", r
    assert r.header("X-Args") == "z=2", r
    assert r.header("X-Request-Uri") == "/x?y=1", r
    assert wh.wait_for(lambda: os.path.exists(log) and open(log).read())
    assert open(log).read().splitlines()[-1] == "/new/x z=2 /x?y=1"

"""`type: "external"` with `"protocol": "http"`: the worker is a plain
socket-activated HTTP server (tests/apps/http_app.py: http.server on fd 3)
and the router proxies requests to it."""

import hashlib
import json
import os
import shutil
import signal
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON = "/usr/bin/python3"
MB = 1024 * 1024


def pattern(n):
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


@pytest.fixture
def appdir():
    d = hh.make_root("warren-httpapp-")
    shutil.copy(os.path.join(REPO, "tests", "apps", "http_app.py"), d)
    os.chmod(os.path.join(d, "http_app.py"), 0o644)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def app(appdir, processes=1, args=(), **kw):
    a = {"type": "external", "protocol": "http", "executable": PYTHON,
         "arguments": [os.path.join(appdir, "http_app.py")] + list(args),
         "processes": processes}
    a.update(kw)
    return a


def fetch(port, path, method="GET", body=b"", timeout=30):
    with hh.Conn(port, timeout=timeout) as c:
        return c.request(method, path, body=body)


def start(w, appdir, **kw):
    return hh.setup(w, [{"action": {"pass": "applications/web"}}],
                    extra={"applications": {"web": app(appdir, **kw)}})


def worker_pids(w):
    protos = [p for p, t in w.children().items() if t == "warren: web prototype"]
    return sorted(p for p, st in wh.descendants(w.main_pid).items()
                  if st[1] in protos and st[0] not in ("Z", "X"))


def test_serves_with_socket_activation(warren, appdir):
    w = warren
    port = start(w, appdir)
    r = hh.get(port, "/env")
    assert r.status == 200, r
    env = json.loads(r.body)
    assert env["LISTEN_FDS"] == "1"
    assert env["LISTEN_PID"] == str(env["pid"])
    assert env["LISTEN_FDNAMES"] == "web"
    assert env["WARREN_APP_NAME"] == "web"
    assert "WARREN_CHANNEL_FD" not in env
    assert worker_pids(w) == [env["pid"]]
    w.baseline_all()


def test_request_fields_forwarded_host_kept(warren, appdir):
    port = start(warren, appdir)
    r = hh.get(port, "/headers", host="example.test:8080",
               headers={"X-Custom": "v1", "Connection": "keep-alive, X-Custom"})
    assert r.status == 200
    fields = json.loads(r.body)
    names = [k.lower() for k, _ in fields]
    assert ["Host", "example.test:8080"] in fields
    assert ["X-Custom", "v1"] in fields
    assert ["X-Forwarded-For", "127.0.0.1"] in fields   # the client, for the app
    # The client's Connection is hop-by-hop; the router's own connection to
    # the worker is kept alive, which HTTP/1.1 says without the field.
    assert "connection" not in names
    assert "keep-alive" not in names


def test_large_bodies_both_ways(warren, appdir):
    port = start(warren, appdir)
    body = os.urandom(6 * MB)
    r = fetch(port, "/echo", "POST", body)
    assert r.status == 200
    assert r.header("Content-Length") == str(len(body))
    assert hashlib.sha256(r.body).digest() == hashlib.sha256(body).digest()
    r = fetch(port, "/sha", "POST", body)
    assert r.body == b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
    r = fetch(port, "/big?n=%d" % (5 * MB))
    assert r.status == 200 and r.body == pattern(5 * MB)


def test_chunked_and_close_delimited_upstream(warren, appdir):
    port = start(warren, appdir)
    n = 3 * MB + 17
    with hh.Conn(port, timeout=30) as c:
        for path in ("/chunked?n=%d" % n, "/close?n=%d" % n, "/big?n=%d" % n):
            r = c.request("GET", path)
            assert r.status == 200, (path, r)
            assert r.body == pattern(n), path
        # The client connection stayed open across all three.
        r = c.request("GET", "/")
        assert r.status == 200
    # HTTP/1.0 client: no chunked framing, the end of the connection frames it.
    r, closed = hh.raw(port, b"GET /chunked?n=1000 HTTP/1.0\r\n\r\n")
    assert r.status == 200 and closed
    assert r.header("Transfer-Encoding") is None
    assert r.body == pattern(1000)


def test_keep_alive_across_requests_and_head(warren, appdir):
    port = start(warren, appdir, processes=2)
    with hh.Conn(port) as c:
        pids = set()
        for i in range(10):
            r = c.request("GET", "/")
            assert r.status == 200
            pids.add(r.header("X-Pid"))
        r = c.request("HEAD", "/")
        assert r.status == 200
        assert r.header("Content-Length") == str(len(b"hello ") + len(r.header("X-Pid")))
        assert r.body == b""
        r = c.request("GET", "/big?n=10")
        assert r.body == pattern(10)
    assert 1 <= len(pids) <= 2


def test_worker_dying_gets_502_and_is_replaced(warren, appdir):
    w = warren
    port = start(w, appdir)
    assert hh.get(port, "/").status == 200
    w.baseline_all()          # the post-test check then sees what the death leaked
    before = worker_pids(w)
    r = hh.get(port, "/die")
    assert r.status == 502, r
    assert wh.wait_for(lambda: worker_pids(w) and worker_pids(w) != before, 10)

    def served():
        r = hh.get(port, "/")
        return r.status == 200 and int(r.header("X-Pid")) not in before
    assert wh.wait_for(served, 10)


def test_killed_idle_worker_is_replaced(warren, appdir):
    w = warren
    port = start(w, appdir)
    (pid,) = worker_pids(w)
    os.kill(pid, signal.SIGKILL)
    assert wh.wait_for(lambda: hh.get(port, "/").status == 200
                       and worker_pids(w) and pid not in worker_pids(w), 10)


def test_limits_timeout_answers_503_and_replaces_the_worker(warren, appdir):
    w = warren
    port = start(w, appdir, limits={"timeout": 1})
    assert hh.get(port, "/").status == 200
    w.baseline_all()
    (pid,) = worker_pids(w)
    r = hh.get(port, "/sleep?n=3600")
    assert r.status == 503, r
    assert wh.wait_for(lambda: worker_pids(w) and pid not in worker_pids(w), 10)
    assert wh.wait_for(lambda: hh.get(port, "/").status == 200, 10)


def test_program_failing_at_once_fails_the_put(warren, appdir):
    w = warren
    before = w.config_bytes()
    port = wh.free_port()
    s, j = w.put("/config", {
        "listeners": {"127.0.0.1:%d" % port: {"pass": "applications/web"}},
        "applications": {"web": app(appdir, args=["fail"])}})
    assert s == 500, j
    assert "the database is unreachable" in j["detail"], j
    assert "exited with code 2" in j["detail"], j
    assert w.config_bytes() == before
    assert not worker_pids(w)


def test_retire_stops_workers(warren, appdir):
    w = warren
    port = start(w, appdir, processes=2)
    assert hh.get(port, "/").status == 200
    old = worker_pids(w)
    assert len(old) == 2
    s, j = w.put("/config/applications/web/processes", 1)
    assert s == 200, j
    assert wh.wait_for(lambda: len(worker_pids(w)) == 1 and not set(worker_pids(w)) & set(old),
                       10)
    assert hh.get(port, "/").status == 200
    s, j = w.delete("/config/applications")
    assert s == 400 or s == 200


def test_reconfiguration_loop_under_load_loses_no_request(warren, appdir):
    w = warren
    port = start(w, appdir, processes=2)
    assert wh.wait_for(lambda: len(worker_pids(w)) == 2, 10)
    assert hh.get(port, "/").status == 200
    w.baseline_all()
    results, stop = [], [False]

    def load():
        while not stop[0]:
            try:
                with hh.Conn(port, timeout=10) as c:
                    for _ in range(5):
                        results.append(c.request("POST", "/sha", body=b"x" * 1000).status)
            except Exception as e:          # noqa: BLE001 - any failure counts
                results.append(repr(e))

    # One client: never more requests than ready workers, so none waits in a
    # queue (waiters of a retired generation move to the new one: app_scale.c;
    # test_reload_stress.py covers that with many clients).
    threads = [threading.Thread(target=load)]
    for t in threads:
        t.start()
    try:
        for i in range(8):
            s, j = w.put("/config/applications/web/environment", {"ROUND": str(i)})
            assert s == 200, j
    finally:
        stop[0] = True
        for t in threads:
            t.join()
    assert len(results) > 10 and all(r == 200 for r in results), \
        [r for r in results if r != 200][:5]
    print("%d requests across 8 generations" % len(results))
    assert wh.wait_for(lambda: len(worker_pids(w)) == 2, 10)


def chunked(body, size=70001):
    out = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
           for i in range(0, len(body), size)]
    return b"".join(out) + b"0\r\n\r\n"


def test_chunked_request_bodies_reach_the_app_with_a_length(warren, appdir):
    """The worker is an HTTP server that reads Content-Length bodies: a
    chunked body is read whole by the router (small: in memory; large: in
    a temporary file) and arrives with its length."""
    port = start(warren, appdir)
    head = b"POST /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with hh.Conn(port, timeout=60) as c:
        for n in (3000, 5 * MB + 3):
            body = os.urandom(n)
            c.send(head + chunked(body))
            r = c.read_response()
            assert r.status == 200, r
            assert r.body == b"%d %s" % (n, hashlib.sha256(body).hexdigest().encode())
        c.send(b"POST /headers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"3\r\nabc\r\n0\r\n\r\n")
        fields = [(k.lower(), v) for k, v in json.loads(c.read_response().body)]
        assert ("content-length", "3") in fields
        assert all(k != "transfer-encoding" for k, _ in fields)
        # The connection goes on.
        assert c.request("GET", "/").status == 200


def test_chunked_request_body_over_max_body_size_is_413(warren, appdir):
    port = hh.setup(warren, [{"action": {"pass": "applications/web"}}],
                    settings={"http": {"max_body_size": 50000}},
                    extra={"applications": {"web": app(appdir)}})
    with hh.Conn(port, timeout=10) as c:
        c.send(b"POST /sha HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               + chunked(os.urandom(50001), 1000))
        r = c.read_response()
        assert r.status == 413, r
        assert c.closed(5)

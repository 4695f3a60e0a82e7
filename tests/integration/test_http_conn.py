"""Data plane: connections. Keep-alive, pipelining, HEAD, 100-continue, body
discarding, request targets, HTTP/1.0, timeouts, listeners added/removed
live, unix listeners, /status counters, reconfiguration under load."""

import os
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

H = b"Host: localhost\r\n"

ECHO = [
    {"match": {"uri": "/b"}, "action": {"return": 200, "response_headers": {"X-Uri": "$uri"}}},
    {"match": {"uri": "/c"}, "action": {"return": 201, "response_headers": {"X-Uri": "$uri"}}},
    {"action": {"return": 404, "response_headers": {"X-Uri": "$uri"}}},
]


def test_keep_alive_two_requests(vwarren):
    port = hh.setup(vwarren, ECHO)
    with hh.Conn(port) as c:
        r1 = c.request("GET", "/b")
        assert r1.status == 200 and r1.header("X-Uri") == "/b", r1
        assert r1.header("Connection") is None, r1
        assert c.still_open(0.3)
        r2 = c.request("GET", "/c")
        assert r2.status == 201 and r2.header("X-Uri") == "/c", r2


def test_pipelining_in_order(vwarren):
    port = hh.setup(vwarren, ECHO)
    with hh.Conn(port) as c:
        c.send(hh.build("GET", "/c") + hh.build("GET", "/x") + hh.build("GET", "/b"))
        got = [c.read_response() for _ in range(3)]
        assert [(r.status, r.header("X-Uri")) for r in got] == \
            [(201, "/c"), (404, "/x"), (200, "/b")], got
        assert c.still_open(0.3)


def test_pipelining_byte_by_byte(vwarren):
    """The head split at every byte still parses (incremental parser)."""
    port = hh.setup(vwarren, ECHO)
    data = hh.build("GET", "/b", {"User-Agent": "slow"}) + hh.build("GET", "/c")
    with hh.Conn(port) as c:
        for i in range(len(data)):
            c.send(data[i:i + 1])
        assert c.read_response().status == 200
        assert c.read_response().status == 201


def test_head_no_body_same_length(vwarren):
    port = hh.setup(vwarren, [{"action": {"return": 404}}])
    with hh.Conn(port) as c:
        g = c.request("GET", "/x")
        assert g.status == 404 and len(g.body) > 0
        # HEAD then GET on the same connection: if HEAD sent a body, the
        # GET response would be misparsed
        c.send(hh.build("HEAD", "/x") + hh.build("GET", "/x"))
        h = c.read_response(head_only=True)
        assert h.status == 404
        assert h.header("Content-Length") == g.header("Content-Length") == str(len(g.body))
        g2 = c.read_response()
        assert g2.status == 404 and g2.body == g.body, g2


def test_expect_100_continue_return_action(vwarren):
    """The body is not needed by a return action: the final answer comes
    without waiting for the body, and the connection is closed."""
    port = hh.setup(vwarren, [{"action": {"return": 204}}])
    with hh.Conn(port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n")
        r = c.read_response()
        if r.status == 100:
            r = c.read_response()
        assert r.status == 204, r
        assert r.header("Connection") == "close", r
        assert c.closed(5.0)


def test_chunked_body_discarded_then_pipelined(vwarren):
    port = hh.setup(vwarren, ECHO)
    with hh.Conn(port) as c:
        c.send(b"POST /b HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n1a;ext=1\r\n" + b"G" * 26 + b"\r\n0\r\nX-Trailer: t\r\n\r\n"
               b"GET /c HTTP/1.1\r\n" + H + b"\r\n")
        r1 = c.read_response()
        assert r1.status == 200 and r1.header("X-Uri") == "/b", r1
        r2 = c.read_response()
        assert r2.status == 201 and r2.header("X-Uri") == "/c", r2


def test_content_length_body_discarded_then_pipelined(vwarren):
    port = hh.setup(vwarren, ECHO)
    body = b"GET /x HTTP/1.1\r\nHost: evil\r\n\r\n"      # looks like a request: is body
    with hh.Conn(port) as c:
        c.send(hh.build("POST", "/b", body=body) + hh.build("GET", "/c"))
        assert c.read_response().status == 200
        r = c.read_response()
        assert r.status == 201 and r.header("X-Uri") == "/c", r
        assert c.still_open(0.3)


def test_large_body_discarded_in_pieces(vwarren):
    port = hh.setup(vwarren, ECHO, {"http": {"max_body_size": 4 << 20}})
    with hh.Conn(port) as c:
        c.send(b"POST /b HTTP/1.1\r\n" + H + b"Content-Length: %d\r\n\r\n" % (3 << 20))
        for _ in range(48):
            c.send(b"q" * 65536)
        c.send(hh.build("GET", "/c"))
        assert c.read_response().status == 200
        assert c.read_response().status == 201


def test_absolute_form_target(vwarren):
    port = hh.setup(vwarren, [
        {"match": {"uri": "/b", "host": "abs.example"},
         "action": {"return": 200, "response_headers": {"X-H": "$host", "X-U": "$uri"}}},
        {"action": {"return": 404}}])
    r = hh.get(port, "http://abs.example/b?q=1", host="other.example")
    assert r.status == 200, r
    assert r.header("X-U") == "/b"
    assert r.header("X-H") == "abs.example"


@pytest.mark.parametrize("target,uri", [
    ("/a/../b", "/b"), ("/./b", "/b"), ("//b", "/b"), ("/%62", "/b"),
    ("/a/%2e%2e/b", "/b"), ("/a/b/../../b", "/b"), ("/b?x=/../c", "/b"),
])
def test_target_normalized(vwarren, target, uri):
    port = hh.setup(vwarren, ECHO)
    r = hh.get(port, target)
    assert r.status == 200, r
    assert r.header("X-Uri") == uri


def test_http10_closes_unless_keep_alive(vwarren):
    port = hh.setup(vwarren, ECHO)
    with hh.Conn(port) as c:
        r = c.request("GET", "/b", host=None, version="HTTP/1.0")
        assert r.status == 200
        assert c.closed(5.0), "HTTP/1.0 without keep-alive must close"
    with hh.Conn(port) as c:
        r = c.request("GET", "/b", {"Connection": "keep-alive"}, host=None, version="HTTP/1.0")
        assert r.status == 200
        assert r.header("Connection").lower() == "keep-alive", r
        assert c.still_open(0.3)
        r = c.request("GET", "/c", {"Connection": "keep-alive"}, host=None, version="HTTP/1.0")
        assert r.status == 201


def test_http11_connection_close(vwarren):
    port = hh.setup(vwarren, ECHO)
    with hh.Conn(port) as c:
        r = c.request("GET", "/b", {"Connection": "close"})
        assert r.status == 200 and r.header("Connection") == "close"
        assert c.closed(5.0)


# ---------------------------------------------------------------- timeouts

def test_header_read_timeout_408(vwarren):
    port = hh.setup(vwarren, ECHO, {"http": {"header_read_timeout": 1}})
    with hh.Conn(port, timeout=10) as c:
        t0 = time.monotonic()
        c.send(b"GET /b HTTP/1.1\r\nHost: loc")
        r = c.read_response()
        assert r.status == 408, r
        assert c.closed(5.0)
        assert time.monotonic() - t0 < 6, "408 took %.1fs" % (time.monotonic() - t0)


def test_idle_timeout_closes(vwarren):
    port = hh.setup(vwarren, ECHO, {"http": {"idle_timeout": 1}})
    with hh.Conn(port, timeout=10) as c:
        assert c.request("GET", "/b").status == 200
        t0 = time.monotonic()
        assert c.closed(6.0), "idle keep-alive connection not closed"
        assert time.monotonic() - t0 >= 0.5


def test_idle_connection_without_request_closed(vwarren):
    """A connection that never sends a byte is not kept forever either."""
    port = hh.setup(vwarren, ECHO, {"http": {"idle_timeout": 1, "header_read_timeout": 1}})
    with hh.Conn(port, timeout=10) as c:
        assert c.closed(6.0)


# ---------------------------------------------------------------- listeners

def test_add_listener_keeps_open_connection(vwarren):
    p1 = hh.setup(vwarren, ECHO)
    p2 = wh.free_port()
    with hh.Conn(p1) as c:
        assert c.request("GET", "/b").status == 200
        cfg = vwarren.config()
        cfg["listeners"]["127.0.0.1:%d" % p2] = {"pass": "routes"}
        assert vwarren.put("/config", cfg) == (200, wh.SUCCESS)
        assert c.still_open(0.2)
        r = c.request("GET", "/c")
        assert r.status == 201, r
        assert hh.get(p2, "/b").status == 200
        assert c.request("GET", "/b").status == 200


def test_remove_listener_refuses(vwarren):
    p1 = hh.setup(vwarren, ECHO)
    p2 = wh.free_port()
    cfg = vwarren.config()
    cfg["listeners"]["127.0.0.1:%d" % p2] = {"pass": "routes"}
    assert vwarren.put("/config", cfg) == (200, wh.SUCCESS)
    assert hh.get(p2, "/b").status == 200
    assert vwarren.delete("/config/listeners/127.0.0.1:%d" % p2) == (200, wh.SUCCESS)
    with pytest.raises(ConnectionRefusedError):
        hh.Conn(p2).close()
    assert hh.get(p1, "/b").status == 200


def test_unix_listener(vwarren):
    path = os.path.join(vwarren.dir, "http.sock")
    hh.setup(vwarren, ECHO, listeners={"unix:" + path: {"pass": "routes"}})
    with hh.Conn(unix=path) as c:
        r = c.request("GET", "/b")
        assert r.status == 200 and r.header("X-Uri") == "/b", r
        r = c.request("GET", "/c")
        assert r.status == 201


def test_listener_pass_named_route(vwarren):
    p1, p2 = wh.free_port(), wh.free_port()
    hh.setup(vwarren, {"one": [{"action": {"return": 201}}],
                       "two": [{"action": {"return": 202}}]},
             listeners={"127.0.0.1:%d" % p1: {"pass": "routes/one"},
                        "127.0.0.1:%d" % p2: {"pass": "routes/two"}})
    assert hh.get(p1).status == 201
    assert hh.get(p2).status == 202


# ---------------------------------------------------------------- /status

def test_status_counters(warren):
    port = hh.setup(warren, ECHO)
    assert hh.status(warren)["connections"] == \
        {"accepted": 0, "active": 0, "idle": 0, "closed": 0}
    n = 0
    for m in range(4):                    # M = 4 connections, N = 1+2+3+4 = 10
        with hh.Conn(port) as c:
            for _ in range(m + 1):
                assert c.request("GET", "/b").status == 200
                n += 1
    st = hh.wait_status(warren, lambda s: s["connections"]["closed"] == 4)
    assert st["connections"] == {"accepted": 4, "active": 0, "idle": 0, "closed": 4}, st
    assert st["requests"]["total"] == n, st

    with hh.Conn(port) as c:
        assert c.request("GET", "/b").status == 200
        st = hh.wait_status(warren, lambda s: s["connections"]["idle"] == 1)
        assert st["connections"] == {"accepted": 5, "active": 0, "idle": 1, "closed": 4}, st
        assert st["requests"]["total"] == n + 1
        c.send(b"GET /b HTTP/1.1\r\nHost: x")      # a request in progress
        st = hh.wait_status(warren, lambda s: s["connections"]["active"] == 1)
        assert st["connections"]["active"] == 1 and st["connections"]["idle"] == 0, st
        c.send(b"\r\n\r\n")
        assert c.read_response().status == 200
    st = hh.wait_status(warren, lambda s: s["connections"]["closed"] == 5)
    assert st["connections"] == {"accepted": 5, "active": 0, "idle": 0, "closed": 5}, st
    assert st["requests"]["total"] == n + 2, st


def test_status_counts_errors(warren):
    port = hh.setup(warren, ECHO)
    r, closed = hh.raw(port, b"GET / HTTP/2.0\r\n\r\n")
    assert r.status == 505 and closed
    st = hh.wait_status(warren, lambda s: s["connections"]["closed"] == 1)
    assert st["connections"] == {"accepted": 1, "active": 0, "idle": 0, "closed": 1}, st
    assert st["requests"]["total"] == 1, st


# ---------------------------------------------------------------- reconfiguration

def test_reconfigure_under_load(vwarren):
    port = hh.setup(vwarren, [{"action": {"return": 200}}])
    stop = threading.Event()
    errors = []
    counts = {"ok": 0, "conns": 0}

    def load():
        while not stop.is_set():
            try:
                with hh.Conn(port) as c:
                    counts["conns"] += 1
                    for _ in range(5):
                        r = c.request("GET", "/")
                        if r.status not in (200, 201):
                            errors.append("status %r" % r)
                            return
                        counts["ok"] += 1
                        if stop.is_set():
                            break
            except (OSError, hh.HTTPError) as e:
                errors.append(repr(e))
                return

    ts = [threading.Thread(target=load) for _ in range(4)]
    for t in ts:
        t.start()
    try:
        for i in range(30):
            code = 201 if i % 2 == 0 else 200
            s, j = vwarren.put("/config/routes/0/action/return", code)
            assert (s, j) == (200, wh.SUCCESS), (i, s, j)
    finally:
        time.sleep(0.2)
        stop.set()
        for t in ts:
            t.join(20)
    assert not errors, errors[:5]
    assert counts["ok"] > 30, counts

"""Connections to "protocol": "http" workers are kept alive between requests
(src/router/proxy.c; each worker's own upool.c pool): a response framed by its length
leaves the connection for the worker's next request; one the worker closed
meanwhile is not used, or, if it closes as a request goes, a request that
may be sent twice is sent again on a new connection. tests/apps/http_app.py
numbers its connections (/conn)."""

import re
import socket
import threading
import time

import http_helpers as hh
import warren_helpers as wh
from test_http_app import app, appdir  # noqa: F401 (appdir: a fixture)

KEEP_IDLE_S = 1.0          # src/router/internal.h WR_HTTP_KEEP_IDLE_MS
SWEEP_S = 0.5              # ... WR_WORKER_SWEEP_MS


def start(w, appdir, args=(), **kw):
    # One router thread: a connection goes back to its pool once its answer
    # went out, and with two threads the next client's request could come
    # in on the other one a moment before (a new connection, rightly).
    return hh.setup(w, [{"action": {"pass": "applications/web"}}],
                    settings={"listen_threads": 1},
                    extra={"applications": {"web": app(appdir, args=args, **kw)}})


def conn_of(port, method="GET", path="/conn", body=b""):
    """(connection number, requests on it) the worker saw for one request,
    each from a new client connection (the router's side is what is kept)."""
    with hh.Conn(port, timeout=30) as c:
        r = c.request(method, path, body=body)
    assert r.status == 200, (r.status, r.body)
    m = re.fullmatch(rb"conn (\d+) request (\d+)", r.body)
    assert m, r.body
    return int(m.group(1)), int(m.group(2))


def get(port, path, method="GET", body=b""):
    with hh.Conn(port, timeout=30) as c:
        return c.request(method, path, body=body)


def test_next_requests_use_the_same_connection(warren, appdir):
    port = start(warren, appdir)
    first, _ = conn_of(port)
    seen = [conn_of(port) for _ in range(5)]
    # One connection carried them all, one request after the other.
    assert seen == [(first, n) for n in range(2, 7)]
    # A request with a body, and a chunked response, keep it as well.
    r = get(port, "/sha", "POST", b"x" * 100000)
    assert r.status == 200
    r = get(port, "/chunked?n=70000")
    assert r.status == 200 and len(r.body) == 70000
    assert conn_of(port) == (first, 9)


def test_concurrent_worker_keeps_one_per_slot_and_reuses_the_newest(warren, appdir):
    port = start(warren, appdir, args=["threads"], concurrency=4)
    seen = {conn_of(port)[0] for _ in range(20)}
    assert len(seen) == 1, seen


def test_unused_connection_is_closed_after_a_second(warren, appdir):
    port = start(warren, appdir)
    first, _ = conn_of(port)
    # Kept for about WR_HTTP_KEEP_IDLE_MS (give or take a sweep), then closed:
    # the next request opens a new one.
    time.sleep(KEEP_IDLE_S + 2 * SWEEP_S + 0.2)
    again, n = conn_of(port)
    assert again != first and n == 1


def test_response_that_closes_or_is_http10_is_not_kept(warren, appdir):
    port = start(warren, appdir)
    first, _ = conn_of(port)
    r = get(port, "/close?n=1000")                 # Connection: close, unframed
    assert r.status == 200 and len(r.body) == 1000
    second, n = conn_of(port)
    assert second != first and n == 1
    r = get(port, "/v10")                          # HTTP/1.0, no keep-alive
    assert r.status == 200 and r.body == b"hello"
    third, n = conn_of(port)
    assert third != second and n == 1


def test_worker_closing_as_request_goes_gets_it_sent_again(warren, appdir):
    port = start(warren, appdir)
    warren.mark_log()
    r = get(port, "/drop-next")
    assert r.status == 200
    # The kept connection is taken (it looks open), the worker reads the
    # request and closes it unanswered: a GET goes again on a new connection.
    c1, n = conn_of(port)
    assert n == 1
    assert "closed a kept connection as a request went; sending it on a new one" \
        in warren.log()
    warren.baseline_all()


def test_request_with_body_is_not_sent_twice(warren, appdir):
    port = start(warren, appdir)
    before = get(port, "/")
    r = get(port, "/drop-next")
    assert r.status == 200
    # The worker may have taken it: a POST is not sent again.
    r = get(port, "/sha", "POST", b"payload")
    assert r.status == 502
    # Closing a kept connection is no fault of the worker: it goes on.
    after = get(port, "/")
    assert after.status == 200 and after.body == before.body


def test_kept_connection_is_an_fd_of_the_router_until_the_app_goes(warren, appdir):
    port = start(warren, appdir)
    router = warren.pid("router")
    legit = warren.legit_targets()
    base = warren.fd_count(router, legit)
    conn_of(port)
    assert wh.wait_for(lambda: warren.fd_count(router, legit) == base + 1, 5, 0.02), \
        (base, warren.fd_count(router, legit))
    # The application goes away with its worker, and the kept connection
    # with them (the post-test check sees the router back to its count).
    hh.setup(warren, [{"action": {"return": 204}}])


def test_client_leaving_halfway_does_not_leave_the_connection_kept(warren, appdir):
    port = start(warren, appdir)
    first, _ = conn_of(port)
    # The response is still coming from the worker when the client goes:
    # that connection is out of step and must not carry the next request.
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /big?n=8000000 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert s.recv(65536).startswith(b"HTTP/1.1 200")
    s.close()
    second, n = conn_of(port)
    assert second != first and n == 1


def test_sequential_server_with_concurrency_is_slowed_not_stuck(warren, appdir):
    # A server that serves one connection at a time, told "concurrency": 2
    # (documented as wrong): the second request's connection waits in its
    # backlog while the server reads the first, kept, one, until the router
    # closes that as unused (the sweep ages the pools of busy workers too).
    port = start(warren, appdir, concurrency=2)
    out = []

    def one():
        with hh.Conn(port, timeout=20) as c:
            out.append(c.request("GET", "/sleep?n=1").status)

    ts = [threading.Thread(target=one) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert out == [200, 200]

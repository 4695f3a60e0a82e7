"""`"protocol": "http"` with `"concurrency"`: the router proxies that many
requests at once to one worker (tests/apps/http_app.py with "threads": a
ThreadingHTTPServer; /meet?n=K answers "together" only when K requests are
being served by the program at the same time)."""

import concurrent.futures
import socket
import threading

import http_helpers as hh
import warren_helpers as wh
from test_http_app import app, appdir, start, worker_pids  # noqa: F401 - fixture

assert appdir


def threaded(**kw):
    return dict(args=["threads"], **kw)


def fetch_all(port, paths, timeout=30):
    """GET every path on its own connection, all at once; the responses."""
    def one(path):
        with hh.Conn(port, timeout=timeout) as c:
            return c.request("GET", path)
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as ex:
        return list(ex.map(one, paths))


def settle(w, port):
    """The fd baseline with the application up: the post-test check then
    catches what the test itself leaked."""
    assert hh.get(port, "/").status == 200
    assert wh.wait_for(lambda: active(w)["requests"]["active"] == 0, 10)
    w.baseline_all()


def in_flight(ex, w, port, path, then_active):
    """GET path in the background; back once the app counts then_active
    requests active."""
    f = ex.submit(fetch_all, port, [path])
    assert wh.wait_for(lambda: active(w)["requests"]["active"] == then_active, 10)
    return f


def active(w):
    s, j = w.get("/status/applications/web")
    assert s == 200, j
    return j


def test_one_request_at_a_time_without_the_key(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded())
    settle(w, port)
    rs = fetch_all(port, ["/meet?n=2&t=1"] * 2)
    assert [r.status for r in rs] == [200, 200]
    assert [r.body for r in rs] == [b"alone", b"alone"]


def test_concurrency_sends_that_many_at_once_and_no_more(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(concurrency=3))
    settle(w, port)
    rs = fetch_all(port, ["/meet?n=3"] * 3)
    assert [r.body for r in rs] == [b"together"] * 3, rs
    # A fourth would have to be there at the same time: the router holds it.
    rs = fetch_all(port, ["/meet?n=4&t=1"] * 4)
    assert all(r.status == 200 and r.body == b"alone" for r in rs), rs
    assert len(worker_pids(w)) == 1


def test_requests_spread_over_workers_before_sharing_one(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(processes=2, concurrency=4))
    assert wh.wait_for(lambda: active(w)["processes"]["idle"] == 2, 10)
    settle(w, port)
    # Each process meets only its own requests: two at once on two workers
    # never meet.
    rs = fetch_all(port, ["/meet?n=2&t=1"] * 2)
    assert [r.body for r in rs] == [b"alone"] * 2
    assert len({r.header("X-Pid") for r in rs}) == 2, rs


def test_status_counts_a_worker_with_a_free_slot_as_idle(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(concurrency=2))
    settle(w, port)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        first = in_flight(ex, w, port, "/meet?n=2&t=20", 1)
        j = active(w)
        assert j["processes"] == {"running": 1, "starting": 0, "idle": 1}, j
        second = ex.submit(fetch_all, port, ["/meet?n=2&t=20"])
        assert first.result()[0].body == b"together"
        assert second.result()[0].body == b"together"
    assert wh.wait_for(lambda: active(w)["requests"]["active"] == 0, 10)


def test_a_freed_slot_goes_to_the_request_waiting(warren, appdir):
    """Two slots: one held by a request meeting a later one, the other by a
    short request. The third request waits for a slot; it must get the
    short one's as soon as that ends, while the worker is still busy."""
    w = warren
    port = start(w, appdir, **threaded(concurrency=2))
    settle(w, port)
    with concurrent.futures.ThreadPoolExecutor(3) as ex:
        meeting = in_flight(ex, w, port, "/meet?n=2&t=20", 1)
        short = in_flight(ex, w, port, "/sleep?n=1", 2)
        late = ex.submit(fetch_all, port, ["/meet?n=2&t=20"])
        assert short.result()[0].status == 200
        assert late.result()[0].body == b"together"
        assert meeting.result()[0].body == b"together"


def test_a_dying_worker_fails_each_of_its_requests_and_is_replaced(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(concurrency=2))
    settle(w, port)
    before = worker_pids(w)
    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        long = in_flight(ex, w, port, "/sleep?n=30", 1)
        assert hh.get(port, "/die").status == 502
        assert long.result()[0].status == 502
    assert wh.wait_for(lambda: worker_pids(w) and worker_pids(w) != before, 10)
    assert wh.wait_for(lambda: hh.get(port, "/").status == 200, 10)
    rs = fetch_all(port, ["/meet?n=2"] * 2)
    assert [r.body for r in rs] == [b"together"] * 2


def test_limits_timeout_kills_the_worker_once(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(concurrency=2, limits={"timeout": 1}))
    settle(w, port)
    (pid,) = worker_pids(w)
    rs = fetch_all(port, ["/sleep?n=3600"] * 2)
    # The first to time out kills the worker; the other times out too or
    # sees the worker die first.
    assert sorted(r.status for r in rs) in ([502, 503], [503, 503]), rs
    assert wh.wait_for(lambda: worker_pids(w) and pid not in worker_pids(w), 10)
    assert wh.wait_for(lambda: hh.get(port, "/").status == 200, 10)


def test_an_open_upgrade_holds_one_slot_only(warren, appdir):
    w = warren
    port = start(w, appdir, **threaded(concurrency=2))
    settle(w, port)
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\n"
                  b"Upgrade: echo\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(b"ping\n")
        got = b""
        while b"ping\n" not in got:
            got += s.recv(4096)
        r = hh.get(port, "/")
        assert r.status == 200, r
        s.sendall(b"bye\n")
        got = b""
        while b"bye\n" not in got:
            chunk = s.recv(4096)
            assert chunk
            got += chunk
    finally:
        s.close()


def test_concurrency_is_checked(warren, appdir):
    w = warren
    before = w.config_bytes()
    for value in (0, 65, "2"):
        s, j = w.put("/config/applications", {"web": app(appdir, concurrency=value)})
        assert s == 400, j
        assert j["location"]["path"] == "/applications/web/concurrency", j
        assert "must be an integer" in j["detail"], j
    lw = {"type": "external", "executable": "/bin/true", "concurrency": 2}
    s, j = w.put("/config/applications", {"web": lw})
    assert s == 400, j
    assert j["location"]["path"] == "/applications/web/concurrency", j
    assert "only to an application with" in j["detail"], j
    assert w.config_bytes() == before


def test_more_clients_than_slots_lose_no_request(warren, appdir):
    """24 clients on 2 workers of 4 slots: most requests wait for a slot,
    which they get from whichever request ends, in any router thread."""
    w = warren
    port = start(w, appdir, **threaded(processes=2, concurrency=4))
    assert wh.wait_for(lambda: active(w)["processes"]["idle"] == 2, 10)
    settle(w, port)

    def client(i):
        out = []
        with hh.Conn(port, timeout=30) as c:
            for _ in range(15):
                r = c.request("POST", "/sha", body=b"%d" % i * 500)
                out.append(r.status)
        return out

    with concurrent.futures.ThreadPoolExecutor(24) as ex:
        statuses = [s for out in ex.map(client, range(24)) for s in out]
    assert statuses == [200] * 24 * 15
    assert wh.wait_for(lambda: active(w)["requests"]["active"] == 0, 10)
    assert active(w)["processes"]["idle"] == 2


def test_reconfigurations_under_load_lose_no_request(warren, appdir):
    """16 clients on 2 workers of 4 slots while the app is changed 6 times:
    requests wait for slots, take freed ones, and move to each new
    generation; none is lost, and every old worker goes."""
    w = warren
    port = start(w, appdir, **threaded(processes=2, concurrency=4))
    assert wh.wait_for(lambda: active(w)["processes"]["idle"] == 2, 10)
    settle(w, port)
    stop = threading.Event()

    def client(i):
        out = []
        while not stop.is_set():
            try:
                with hh.Conn(port, timeout=30) as c:
                    for _ in range(10):
                        out.append(c.request("POST", "/sha", body=b"%d" % i * 300).status)
            except Exception as e:          # noqa: BLE001 - any failure counts
                out.append(repr(e))
        return out

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        futures = [ex.submit(client, i) for i in range(16)]
        try:
            for i in range(6):
                s, j = w.put("/config/applications/web/environment", {"ROUND": str(i)})
                assert s == 200, j
        finally:
            stop.set()
        results = [r for f in futures for r in f.result()]
    assert len(results) > 100 and all(r == 200 for r in results), \
        [r for r in results if r != 200][:5]
    assert wh.wait_for(lambda: len(worker_pids(w)) == 2, 10)
    assert wh.wait_for(lambda: active(w)["requests"]["active"] == 0, 10)


def test_limits_requests_recycles_a_concurrent_worker(warren, appdir):
    """limits.requests counts every request given to a worker, however many
    it serves at once; one that reached its share finishes those it holds
    and is replaced."""
    w = warren
    port = start(w, appdir, **threaded(concurrency=2, limits={"requests": 3}))
    pids = []
    for _ in range(5):
        rs = fetch_all(port, ["/meet?n=2&t=1"] * 2)
        assert all(r.status == 200 for r in rs), rs
        pids += [r.header("X-Pid") for r in rs]
    # 10 requests, each worker taking 3 (plus up to a tenth): 3 or more workers
    assert len(set(pids)) >= 3, pids
    assert wh.wait_for(lambda: len(worker_pids(w)) == 1, 10)

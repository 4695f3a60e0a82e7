"""Several requests at once per worker: a worker that says it serves N
requests at once (its HELLO's streams: warren_init_threads) gets up to N,
each on its own stream with its own windows, plus up to "pipeline" more
queued on it. tests/apps/concurrent holds requests (/wait?id=X) until
another one releases them (/release?id=X), so two requests are provably in
one worker at once. Every test here needs a worker with more than one
stream: with one request per worker each of them hangs or fails.

The router threads are one ("listen_threads": 1): a worker takes extra
streams only from connections of the thread whose epoll it is in
(docs/applications.md), and with one thread every connection is there."""

import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONCURRENT = os.path.join(REPO, "build", "apps", "concurrent")
WAIT = 20.0              # seconds an answer may take before a test gives up
PATTERN_MOD = 251        # concurrent's /big: byte i is i % 251
WINDOW = 256 * 1024      # src/lib/proto.h WR_APP_WINDOW_INIT


class Pending:
    """A request sent on its own connection, its answer read in a thread."""

    def __init__(self, port, path, method="GET", body=b"", sock=None):
        if sock is None:
            self.c = hh.Conn(port, timeout=WAIT)
        else:
            self.c = hh.Conn.__new__(hh.Conn)
            self.c.s, self.c.buf, self.c.eof = sock, b"", False
        self.path = path
        self.c.send(hh.build(method, path, body=body))
        self.resp, self.err = None, None
        self.t = None

    def start(self):
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        return self

    def _read(self):
        try:
            self.resp = self.c.read_response()
        except Exception as e:          # noqa: BLE001 - reported by result()
            self.err = e

    def result(self):
        if self.t is None:
            self.start()
        self.t.join(WAIT)
        assert not self.t.is_alive(), "no answer to %s" % self.path
        self.c.close()
        if self.err is not None:
            raise self.err
        return self.resp

    def status(self):
        """The answer's status, or 0 when the connection was cut."""
        try:
            return self.result().status
        except (hh.HTTPError, OSError):
            return 0

    def close(self):
        self.c.close()


def new_log(w):
    """The log since the test began."""
    return w.log().encode()[w.log_mark:].decode("utf-8", "replace")


def app_status(w):
    s, j = w.get("/status/applications/conc")
    assert s == 200, j
    return j


def wait_active(w, n):
    """Until n requests are in the app (being served or queued)."""
    got = wh.wait_for(lambda: app_status(w)["requests"]["active"] == n, WAIT, 0.02)
    assert got, app_status(w)


def workers(w, exe):
    return sorted(p for p, t in w.children().items() if t == exe)


def pid_of(port):
    r = hh.get(port, "/pid")
    assert r.status == 200, r
    return int(r.body.split()[1])


@pytest.fixture
def conc(vwarren):
    """put(streams, pipeline, processes, limits, threads, http2): concurrent
    as application "conc" behind a listener of `threads` router threads (1);
    returns the port once a worker answers."""
    d = hh.make_root("warren-conc-")
    exe = os.path.join(d, "concurrent")
    shutil.copy(CONCURRENT, exe)
    os.chmod(exe, 0o755)

    def put(streams=2, pipeline=0, processes=1, limits=None, threads=1, http2=False):
        app = {"type": "external", "executable": exe, "processes": processes,
               "pipeline": pipeline, "environment": {"STREAMS": str(streams)}}
        if limits:
            app["limits"] = limits
        settings = {"listen_threads": threads}
        if http2:
            settings["http"] = {"http2": True}
        port = hh.setup(vwarren, [{"action": {"pass": "applications/conc"}}],
                        settings=settings, extra={"applications": {"conc": app}})
        assert wh.wait_for(lambda: len(workers(vwarren, exe)) == processes, WAIT)
        put.port = port
        return port

    put.exe = exe
    yield put
    shutil.rmtree(d, ignore_errors=True)


def test_two_requests_served_at_once_by_one_worker(vwarren, conc):
    port = conc(streams=2)
    pid = pid_of(port)
    a = Pending(port, "/wait?id=1").start()
    wait_active(vwarren, 1)
    # /release needs a second stream of the same (only) worker.
    r = hh.get(port, "/release?id=1")
    assert (r.status, r.body) == (200, b"ok %d\n" % pid)
    ra = a.result()
    assert (ra.status, ra.body) == (200, b"released 1 %d\n" % pid)
    assert workers(vwarren, conc.exe) == [pid]


def pattern(start, n):
    return bytes((start + i) % PATTERN_MOD for i in range(n))


def test_slow_client_holds_back_only_its_own_stream(vwarren, conc):
    """Stream A's client reads nothing: its window (one WINDOW) is used up
    and the router holds its bytes. Stream B of the same worker still gets
    a response many windows long (its grants flow as its client reads),
    then A gets the rest once its client reads."""
    port = conc(streams=2)
    size_a, size_b = 4 * 1024 * 1024, 3 * WINDOW + 5
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.settimeout(WAIT)
    s.connect(("127.0.0.1", port))
    a = Pending(port, "/big?size=%d&id=a" % size_a, sock=s)
    wait_active(vwarren, 1)
    rb = hh.get(port, "/big?size=%d" % size_b)
    assert rb.status == 200 and rb.body == pattern(0, size_b)
    r = hh.get(port, "/release?id=a")
    assert r.status == 200, r
    ra = a.result()
    assert ra.status == 200
    assert len(ra.body) == size_a and ra.body == pattern(0, size_a)


def test_worker_killed_with_streams_in_flight(vwarren, conc):
    """Three requests in one worker (three streams, no pipelining: none is
    queued behind another, so none is retried): each gets a 502, the
    worker is replaced, and the fd checks after the test find no leak."""
    port = conc(streams=3)
    pid = pid_of(port)
    ps = [Pending(port, "/wait?id=%d" % i).start() for i in range(3)]
    wait_active(vwarren, 3)
    os.kill(pid, signal.SIGKILL)
    assert sorted(p.status() for p in ps) == [502, 502, 502]
    assert wh.wait_for(lambda: len(workers(vwarren, conc.exe)) == 1
                       and workers(vwarren, conc.exe) != [pid], WAIT)
    new = pid_of(port)
    assert new != pid
    # The new worker serves two at once again.
    a = Pending(port, "/wait?id=x").start()
    wait_active(vwarren, 1)
    assert hh.get(port, "/release?id=x").status == 200
    assert a.result().body == b"released x %d\n" % new


def test_queued_idempotent_request_retried_once_post_never(vwarren, conc):
    """One stream and two pipelined: requests 2 and 3 are queued on the
    worker behind request 1. When it dies, 1 (being served) gets a 502, a
    queued POST a 502 too, a queued GET goes to the next worker. A request
    retried once is not retried again."""
    port = conc(streams=1, pipeline=2)
    pid1 = pid_of(port)
    a = Pending(port, "/wait?id=a").start()
    wait_active(vwarren, 1)
    b = Pending(port, "/wait?id=b", method="POST", body=b"x").start()
    wait_active(vwarren, 2)
    c = Pending(port, "/wait?id=c").start()
    wait_active(vwarren, 3)
    os.kill(pid1, signal.SIGKILL)
    assert a.status() == 502
    assert b.status() == 502
    # c went to the replacement, where it waits to be released.
    assert wh.wait_for(lambda: workers(vwarren, conc.exe) not in ([], [pid1]), WAIT)
    wait_active(vwarren, 1)
    r = hh.get(port, "/release?id=c")
    assert r.status == 200
    pid2 = int(r.body.split()[1])
    assert pid2 != pid1
    assert c.result().body == b"released c %d\n" % pid2
    assert new_log(vwarren).count("sending it to another worker") == 1

    # Again, with two GETs queued: both are retried; on the next worker the
    # second is queued behind the first again, and when that one dies too
    # it is not sent a third time.
    d = Pending(port, "/wait?id=d").start()
    wait_active(vwarren, 1)
    e = Pending(port, "/wait?id=e").start()
    wait_active(vwarren, 2)
    f = Pending(port, "/wait?id=f").start()
    wait_active(vwarren, 3)
    os.kill(pid2, signal.SIGKILL)
    assert d.status() == 502
    assert wh.wait_for(lambda: workers(vwarren, conc.exe) not in ([], [pid2]), WAIT)
    wait_active(vwarren, 2)                 # e and f, on the third worker
    pid3 = workers(vwarren, conc.exe)[0]
    assert new_log(vwarren).count("sending it to another worker") == 3
    os.kill(pid3, signal.SIGKILL)
    assert sorted([e.status(), f.status()]) == [502, 502]
    assert new_log(vwarren).count("sending it to another worker") == 3


def test_limits_requests_recycles_after_its_streams_end(vwarren, conc):
    """limits.requests counts every request a worker took; the one that
    reaches it is served, and the worker is closed once all its streams
    ended (not while one is still held)."""
    port = conc(streams=2, limits={"requests": 3})
    a = Pending(port, "/wait?id=1").start()        # 1
    wait_active(vwarren, 1)
    pid = pid_of(port)                              # 2, at once beside 1
    r = hh.get(port, "/release?id=1")               # 3: the last one
    assert (r.status, r.body) == (200, b"ok %d\n" % pid)
    assert a.result().body == b"released 1 %d\n" % pid
    assert wh.wait_for(lambda: workers(vwarren, conc.exe) not in ([], [pid]), WAIT)
    assert pid_of(port) != pid
    # Its channel went back to main (WR_MSG_APP_RELEASE): an expected exit.
    assert wh.wait_for(lambda: ") let go, exited with code 0" in new_log(vwarren), WAIT)
    assert "replacing it in" not in new_log(vwarren)


def test_limits_timeout_with_streams(vwarren, conc):
    """Two requests hang in one worker: the first to time out gets a 503
    and has the worker killed; the other, in the same worker, gets its
    502 at that moment rather than timing out on its own."""
    port = conc(streams=2, limits={"timeout": 1})
    pid = pid_of(port)
    a = Pending(port, "/wait?id=1").start()
    b = Pending(port, "/wait?id=2").start()
    assert sorted([a.status(), b.status()]) == [502, 503]
    assert new_log(vwarren).count("did not answer within") == 1
    assert wh.wait_for(lambda: workers(vwarren, conc.exe) not in ([], [pid]), WAIT)
    assert pid_of(port) != pid


def test_limits_timeout_counts_from_the_first_attempt(vwarren, conc):
    """limits.timeout is the client's wait, not each attempt's: a queued
    request sent on to the next worker when its own died keeps the deadline
    it had. Here it is held on the next worker and released there after its
    deadline, but well before a clock restarted at the retry would run out:
    it must get its 503 first."""
    timeout, kill_at, release_at = 4, 2.5, 5.2    # seconds after b was sent
    port = conc(streams=1, pipeline=1, limits={"timeout": timeout})
    pid1 = pid_of(port)
    a = Pending(port, "/wait?id=a").start()
    wait_active(vwarren, 1)
    t0 = time.monotonic()
    b = Pending(port, "/wait?id=b").start()       # queued behind a
    wait_active(vwarren, 2)
    time.sleep(max(0.0, t0 + kill_at - time.monotonic()))
    os.kill(pid1, signal.SIGKILL)
    assert a.status() == 502
    time.sleep(max(0.0, t0 + release_at - time.monotonic()))
    hh.get(port, "/release?id=b")   # 404 (or 503) once b's deadline has passed
    assert b.status() == 503
    log = new_log(vwarren)
    assert log.count("sending it to another worker") == 1
    assert log.count("did not answer within") == 1


H2_BATCH = 40            # HTTP/2 connections opened at once, to reach both threads
H2_BATCHES = 10


def test_http2_stream_that_cannot_move_holds_up_nobody(vwarren, conc):
    """Two router threads, one worker serving 4 requests at once, held by a
    long request: it stays at home in that request's thread. An HTTP/2
    stream of the other thread cannot move there (its session is its
    thread's): it waits for the worker to be idle. Meanwhile the requests
    that can take the worker's free places (its own thread's, and HTTP/1.1
    ones of the other thread, which move) must not queue behind it: they
    did, and every request waited for the long one to end."""
    port = conc(streams=4, threads=2, http2=True)
    held = Pending(port, "/wait?id=h").start()
    wait_active(vwarren, 1)
    curl = ["curl", "-s", "--http2-prior-knowledge", "--max-time", str(WAIT),
            "-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/pid" % port]
    waiting, done = [], []
    for _ in range(H2_BATCHES):
        # Connections that come while the worker's thread is busy go to the
        # other one (EPOLLEXCLUSIVE): many at once make it likely.
        batch = [subprocess.Popen(curl, stdout=subprocess.PIPE) for _ in range(H2_BATCH)]
        wh.wait_for(lambda: app_status(vwarren)["requests"]["active"]
                    == 1 + sum(p.poll() is None for p in batch), WAIT, 0.05)
        waiting += [p for p in batch if p.poll() is None]
        done += [p for p in batch if p.poll() is not None]
        if waiting:
            break
    try:
        if not waiting:
            pytest.skip("every HTTP/2 connection went to the worker's thread")
        assert [p.communicate()[0] for p in done] == [b"200"] * len(done)
        for _ in range(8):           # new connections: either thread
            assert hh.get(port, "/pid").status == 200
        assert [p.poll() for p in waiting] == [None] * len(waiting)   # still waiting
        assert hh.get(port, "/release?id=h").status == 200
        assert held.result().status == 200
        # Idle now, the worker goes to the HTTP/2 streams' thread.
        assert [p.communicate(timeout=WAIT)[0] for p in waiting] == [b"200"] * len(waiting)
    finally:
        for p in waiting:
            if p.poll() is None:
                p.kill()
                p.wait()


def test_queue_full_after_every_slot(vwarren, conc):
    """The app's queue (1024 requests) starts only when every slot of its
    workers is taken: with 4 streams and 3 pipelined, the 1032nd request
    at once is the first answered 503."""
    port = conc(streams=4, pipeline=3)
    held = []
    try:
        for i in range(7 + 1024):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(hh.build("GET", "/wait?id=%d" % i))
            held.append(s)
        wait_active(vwarren, 7 + 1024)
        r = hh.get(port, "/pid")
        assert r.status == 503, r
    finally:
        for s in held:
            s.close()
    wait_active(vwarren, 0)
    assert hh.get(port, "/pid").status == 200      # the slots came back


def test_status_counts_streams(vwarren, conc):
    """A worker with a free stream is idle; requests active counts every
    stream with a client."""
    port = conc(streams=2, pipeline=1)
    assert app_status(vwarren) == {"processes": {"running": 1, "starting": 0, "idle": 1},
                                   "requests": {"active": 0}}
    a = Pending(port, "/wait?id=1").start()
    wait_active(vwarren, 1)
    assert app_status(vwarren)["processes"] == {"running": 1, "starting": 0, "idle": 1}
    b = Pending(port, "/wait?id=2").start()
    wait_active(vwarren, 2)
    assert app_status(vwarren)["processes"] == {"running": 1, "starting": 0, "idle": 0}
    assert hh.get(port, "/release?id=1").status == 200     # the pipeline slot
    assert a.result().status == 200
    wait_active(vwarren, 1)
    assert hh.get(port, "/release?id=2").status == 200
    assert b.result().status == 200
    wait_active(vwarren, 0)
    assert app_status(vwarren)["processes"] == {"running": 1, "starting": 0, "idle": 1}


def test_client_leaving_mid_stream_keeps_the_worker(vwarren, conc):
    """A client that goes away ends its own stream (ABORT); the worker and
    its other stream go on, and the freed slot serves the next request."""
    port = conc(streams=2)
    pid = pid_of(port)
    a = Pending(port, "/wait?id=1")
    wait_active(vwarren, 1)
    b = Pending(port, "/wait?id=2").start()
    wait_active(vwarren, 2)
    a.close()
    wait_active(vwarren, 1)
    # The only free slot is the one the worker gave back when it took
    # the ABORT: /release gets it.
    r = hh.get(port, "/release?id=2")
    assert (r.status, r.body) == (200, b"ok %d\n" % pid)
    assert b.result().body == b"released 2 %d\n" % pid
    assert workers(vwarren, conc.exe) == [pid]
    r = hh.get(port, "/held")
    assert r.body == b"1\n"                # the app still holds the aborted 1
    assert hh.get(port, "/release?id=1").status == 200
    assert hh.get(port, "/held").body == b"0\n"
    assert "[alert]" not in new_log(vwarren)


def test_generation_drains_its_streams(vwarren, conc):
    """Both requests in the old generation's worker finish there after the
    app changed; new requests go to the new generation."""
    port = conc(streams=2)
    old = pid_of(port)
    a = Pending(port, "/sleep?ms=3000").start()
    b = Pending(port, "/sleep?ms=3000").start()
    wait_active(vwarren, 2)
    s, j = vwarren.put("/config/applications/conc/environment/ROUND", "2")
    assert (s, j) == (200, wh.SUCCESS)
    new = pid_of(port)
    assert new != old
    assert a.result().body == b"slept %d\n" % old
    assert b.result().body == b"slept %d\n" % old
    assert wh.wait_for(lambda: old not in workers(vwarren, conc.exe), WAIT)


@pytest.mark.parametrize("value, why", [
    (9, "must be an integer between 0 and 7"),
    (-1, "must be an integer between 0 and 7"),
    ("x", "must be an integer"),
])
def test_pipeline_validation(vwarren, value, why):
    s, j = vwarren.put("/config", {
        "listeners": {},
        "applications": {"a": {"type": "external", "executable": "/bin/true",
                               "pipeline": value}}})
    assert s == 400, j
    assert why in j["detail"] or why in j.get("error", ""), j
    assert "/applications/a/pipeline" in str(j), j

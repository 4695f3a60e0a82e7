"""A Python application with "threads": each worker serves that many
requests at once, in threads, on the streams of its one channel. The
router sends a worker several requests at once (its HELLO offers one
stream per thread): two requests that must meet in the app prove it."""

import json
import shutil
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh

STACK = 1024 * 1024 + 64 * 1024     # a page multiple, not a default size
WAIT_S = 10.0                       # bounds a wait that should end at once

APP = '''
import ctypes, json, os, threading

BARRIERS, LOCK = {}, threading.Lock()
BUSY = {"now": 0, "most": 0}


def meet(name):
    """True when another request met this one at NAME: both were running
    at the same time (in whatever order they came)."""
    with LOCK:
        barrier = BARRIERS.setdefault(name, threading.Barrier(2))
    try:
        barrier.wait(%(wait)s)
        return True
    except threading.BrokenBarrierError:
        return False


def stack_size():
    libc = ctypes.CDLL(None)
    libc.pthread_self.restype = ctypes.c_ulong
    attr, size = ctypes.create_string_buffer(64), ctypes.c_size_t()
    if libc.pthread_getattr_np(ctypes.c_ulong(libc.pthread_self()), attr):
        return -1
    libc.pthread_attr_getstacksize(attr, ctypes.byref(size))
    libc.pthread_attr_destroy(attr)
    return size.value


def serve(environ):
    what, _, name = environ["PATH_INFO"][1:].partition("/")
    if what == "meet":
        return b"met" if meet(name) else b"alone"
    if what == "meet_raise":
        meet(name)
        raise RuntimeError("raised on purpose")
    if what == "busy":      # the most requests this worker ran at once
        return str(BUSY["most"]).encode()
    return json.dumps({"multithread": environ["wsgi.multithread"],
                       "stack": stack_size(), "pid": os.getpid()}).encode()


def application(environ, start_response):
    with LOCK:
        BUSY["now"] += 1
        BUSY["most"] = max(BUSY["most"], BUSY["now"])
    try:
        body = serve(environ)
    finally:
        with LOCK:
            BUSY["now"] -= 1
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Pid", str(os.getpid()))])
    return [body]
''' % {"wait": WAIT_S}


@pytest.fixture
def pyt(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-pyt-")
    hh.write(appdir, "threads_wsgi.py", APP)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def start_app(w, appdir, **app):
    conf = {"type": "python", "path": appdir, "module": "threads_wsgi",
            "processes": 1}
    conf.update(app)
    # One router thread: a worker's free streams serve the connections of
    # the router thread it is at home in (docs/applications.md), so two
    # clients meet on one worker whatever thread accepted them.
    return hh.setup(w, [{"action": {"pass": "applications/t"}}],
                    settings={"listen_threads": 1},
                    extra={"applications": {"t": conf}})


def concurrently(port, first, then):
    """GET both at once (from two clients); both responses."""
    out = [None, None]

    def one(i, path):
        # A meeting nobody comes to lasts WAIT_S: wait longer than that.
        with hh.Conn(port, timeout=2 * WAIT_S) as c:
            out[i] = c.request("GET", path)

    t = threading.Thread(target=one, args=(0, first))
    t.start()
    one(1, then)
    t.join(4 * WAIT_S)
    assert not t.is_alive()
    return out


def test_threads_serve_requests_at_once(pyt):
    w, appdir = pyt
    port = start_app(w, appdir, threads=2, thread_stack_size=STACK)
    a, b = concurrently(port, "/meet/x", "/meet/x")
    assert (a.status, a.body) == (200, b"met")
    assert (b.status, b.body) == (200, b"met")
    assert a.header("X-Pid") == b.header("X-Pid")      # one worker, two threads
    info = json.loads(hh.get(port, "/info").body)
    assert info["multithread"] is True
    assert info["stack"] == STACK


def test_exception_in_one_thread_leaves_the_other(pyt):
    w, appdir = pyt
    port = start_app(w, appdir, threads=2)
    a, b = concurrently(port, "/meet/e", "/meet_raise/e")
    assert b.status == 500
    assert (a.status, a.body) == (200, b"met")
    assert w.log_has("raised on purpose"), w.log()[-3000:]
    assert hh.get(port, "/info").status == 200


def test_threads_one_request_at_a_time_still_works(pyt):
    """Whatever the router does, a threaded worker answers; wsgi.multithread
    says threads; limits.requests recycles it as usual."""
    w, appdir = pyt
    port = start_app(w, appdir, threads=4, limits={"requests": 3})
    pids = []
    for _ in range(7):
        r = hh.get(port, "/info")
        assert r.status == 200
        assert json.loads(r.body)["multithread"] is True
        pids.append(r.header("X-Pid"))
    assert len(set(pids)) >= 2, pids
    assert "replacing it in" not in w.log()


def test_threads_1_is_single_threaded_and_many_are_capped(pyt):
    w, appdir = pyt
    port = start_app(w, appdir, threads=1)
    assert json.loads(hh.get(port, "/info").body)["multithread"] is False
    port = start_app(w, appdir, threads=100)
    assert hh.get(port, "/info").status == 200
    assert w.log_has("capped at 64"), w.log()[-3000:]


def test_bad_thread_stack_size_is_refused_with_its_pointer(pyt):
    w, appdir = pyt
    s, j = w.put("/config", {"applications": {"t": {
        "type": "python", "path": appdir, "module": "threads_wsgi",
        "threads": 2, "thread_stack_size": 1050000}}})
    assert s == 400, j
    assert j["location"] == {"path": "/applications/t/thread_stack_size"}, j
    assert "multiple of the page size" in j["detail"], j

"""warren-python with "threads" (WARREN_PYTHON_THREADS): one worker
serves several requests at once, each in a thread of its own, on the
streams of its one channel. The fake router opens several streams at once,
as the real one does for a worker whose HELLO offers them."""

import json
import os
import socket
import struct

from conftest import assert_clean_stderr
from fake_router import Concurrent
from test_python_targets_zygote import (READY, ZMSG, spawn, start_zygote,
                                        subreaper)  # noqa: F401 (fixture)

MIB = 1024 * 1024
STACK = MIB + 64 * 1024         # a multiple of the page size, not a default


def threads_worker(python_worker, threads, **options):
    w = python_worker(module="threads_apps", threads=str(threads), **options)
    assert w.streams == threads       # HELLO offers one stream per thread
    return w


def test_two_requests_run_at_once(python_worker):
    """/wait/x blocks until /set/x runs: it answers "met" only if the
    worker runs both at the same time."""
    w = threads_worker(python_worker, 2)
    c = Concurrent(w)
    a = c.start(path="/wait/x")
    b = c.start(path="/set/x")
    done = c.run()
    assert (done[a].status, done[a].body) == (200, b"met")
    assert (done[b].status, done[b].body) == (200, b"set")


def test_one_thread_serves_one_at_a_time(python_worker):
    """The control: with threads 1 the same pair cannot meet (the second
    request waits for the first, which waits for it, until WAIT_S)."""
    w = python_worker(module="threads_apps")
    assert w.streams == 1
    c = Concurrent(w)
    a = c.start(path="/wait/y", query="s=0.5")     # not worth the full wait
    b = c.start(path="/set/y")
    done = c.run()
    assert done[a].body == b"alone"
    assert done[b].body == b"set"


def test_all_threads_busy_at_once(python_worker):
    """Three requests wait while the fourth thread serves the requests that
    set them free (queued in the worker until a thread is free): all four
    threads run at once."""
    w = threads_worker(python_worker, 4)
    c = Concurrent(w)
    waits = [c.start(path="/wait/%d" % i) for i in range(3)]
    sets = [c.start(path="/set/%d" % i) for i in range(3)]
    done = c.run()
    assert [done[s].body for s in waits] == [b"met"] * 3
    assert [done[s].body for s in sets] == [b"set"] * 3


def test_multithread_and_threads(python_worker):
    w = threads_worker(python_worker, 3)
    c = Concurrent(w)
    ss = [c.start(path="/info") for _ in range(3)]
    done = c.run()
    infos = [json.loads(done[s].body) for s in ss]
    assert all(i["multithread"] is True for i in infos)
    assert not any(i["main"] for i in infos)      # serving threads, not main
    one = python_worker(module="threads_apps")
    info = json.loads(one.request(path="/info").body)
    assert info["multithread"] is False and info["main"] is True


def test_thread_stack_size_is_honoured(python_worker):
    w = threads_worker(python_worker, 2, thread_stack_size=str(STACK))
    c = Concurrent(w)
    ss = [c.start(path="/info") for _ in range(2)]
    done = c.run()
    for s in ss:
        assert json.loads(done[s].body)["stack"] == STACK
    # Without the option the threads get the system's default, another.
    d = threads_worker(python_worker, 2)
    assert json.loads(d.request(path="/info").body)["stack"] != STACK


def test_bad_thread_options_fail_the_start(python_start):
    for env, text in (({"threads": "0"}, "WARREN_PYTHON_THREADS must be"),
                      ({"threads": "2", "thread_stack_size": "10000"},
                       "must be a multiple of")):
        w = python_start(module="threads_apps", **env)
        assert w.expect_exit() == 78
        assert text in w.stderr()


def test_threads_above_the_channel_are_capped(python_worker):
    w = python_worker(module="threads_apps", threads="100")
    assert w.streams == 64
    assert "capped at 64" in w.stderr()


def test_exception_in_one_thread_leaves_the_others(python_worker):
    """A request streaming its response waits while another raises: the
    raiser gets 500 (and its traceback is logged), the other completes."""
    w = threads_worker(python_worker, 2)
    c = Concurrent(w)
    a = c.start(path="/hold/z")
    b = c.start(path="/raise_set/z")
    done = c.run()
    assert done[b].status == 500
    assert (done[a].status, done[a].body, done[a].end) == (200, b"a1a2",
                                                          "END")
    assert "raised on purpose in z" in w.stderr()
    # And the worker goes on serving with both threads.
    c.start(path="/wait/again")
    c.start(path="/set/again")
    assert sorted(r.body for r in c.run().values())[-2:] == [b"met", b"set"]


def test_body_streams_in_each_thread(python_worker):
    """Large bodies on two streams at once, interleaved by the router: each
    thread reads its own (wsgi.input) and echoes a digest."""
    w = python_worker(module="wsgi_apps", threads="2")
    assert w.streams == 2
    c = Concurrent(w)
    bodies = [os.urandom(700 * 1024), os.urandom(900 * 1024 + 17)]
    ss = [c.start(method="POST", path="/body", query="read", body=b,
                  headers=[("Content-Length", str(len(b)))]) for b in bodies]
    done = c.run()
    for s, b in zip(ss, bodies):
        out = json.loads(done[s].body)
        assert out["len"] == len(b)
        # The router got credit back as each thread read: both streamed.
        assert done[s].grants > 0


def test_abort_one_stream_others_go_on(python_worker):
    w = threads_worker(python_worker, 3)
    c = Concurrent(w)
    a = c.start(path="/hold/k")     # "a1" goes out, then it waits
    b = c.start(path="/wait/never")
    c.abort(b)                      # b's client left; its thread still waits
    c.start(path="/set/k")          # served by the third thread
    done = c.run(until=a)
    assert (done[a].body, done[a].end) == (b"a1a2", "END")
    c.start(path="/set/never")      # let b's thread go
    done = c.run()
    assert done[b].end == "ABORT"


def test_recycled_with_threads(python_worker):
    """limits.requests: the router closes the channel once N requests are
    done in total (here 6, in pairs that must run at once); the worker ends
    cleanly (the fixture checks the exit status 0 and a clean stderr)."""
    w = threads_worker(python_worker, 3)
    c = Concurrent(w)
    for n in range(3):
        a = c.start(path="/wait/r%d" % n)
        c.start(path="/set/r%d" % n)
        assert c.run()[a].body == b"met"
    assert len(c.done) == 6


def test_zygote_workers_start_their_threads(tmp_path, subreaper):  # noqa
    """Threads are started in each forked worker, not in the zygote."""
    zs, proc = start_zygote(tmp_path, module="threads_apps", threads="2",
                            thread_stack_size=str(STACK))
    kind, _, pid, _ = ZMSG.unpack(zs.recv(ZMSG.size))
    assert (kind, pid) == (READY, proc.pid)
    w = spawn(zs, 1, tmp_path)
    w.expect_hello()
    assert w.streams == 2
    c = Concurrent(w)
    a = c.start(path="/wait/zz")
    info = c.start(path="/info")
    c.start(path="/set/zz")
    done = c.run()
    assert done[a].body == b"met"
    assert json.loads(done[info].body)["stack"] == STACK
    # The zygote itself runs no serving thread: one thread only.
    assert os.listdir("/proc/%d/task" % proc.pid) == [str(proc.pid)]
    w.sock.close()
    _, status = os.waitpid(w.proc.pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert_clean_stderr((tmp_path / "worker-1.txt").read_text())
    zs.close()
    assert proc.wait(10) == 0

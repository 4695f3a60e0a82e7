"""The automatic pipeline depth (no "pipeline" key): a worker that serves
one request at a time gets up to 4 queued behind the one it serves while
most requests keep it under 1 ms, and 1 once they take longer, as with
"pipeline": 1 (tests/apps/queued.c counts what waits in its channel)."""

import os
import shutil
import threading
import time

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
QUEUED = os.path.join(REPO, "build", "apps", "queued")


def hammer(port, path, threads=16, seconds=1.5):
    """Keep-alive clients in a loop; every answer must be a 200."""
    end = time.monotonic() + seconds
    bad = []

    def run():
        with hh.Conn(port) as c:
            while time.monotonic() < end:
                r = c.request("GET", path)
                if r.status != 200:
                    bad.append(r.status)
    ts = [threading.Thread(target=run) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not bad, bad


def most_queued(port):
    return int(hh.get(port, "/max").body)


def test_pipeline_depth_follows_request_speed(warren):
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "queued")
    shutil.copy(QUEUED, exe)
    os.chmod(exe, 0o755)
    try:
        auto_port, fixed_port = wh.free_port(), wh.free_port()
        s, j = warren.put("/config", {
            "listeners": {"127.0.0.1:%d" % auto_port: {"pass": "applications/auto"},
                          "127.0.0.1:%d" % fixed_port: {"pass": "applications/fixed"}},
            "applications": {
                "auto": {"type": "external", "executable": exe, "processes": 1},
                "fixed": {"type": "external", "executable": exe, "processes": 1,
                          "pipeline": 1}}})
        assert s == 200, j
        # Fast requests: up to 4 wait behind the one served (1 with the key).
        hammer(auto_port, "/")
        assert 2 <= most_queued(auto_port) <= 4
        hammer(fixed_port, "/")
        assert most_queued(fixed_port) <= 1
        # Requests of 3 ms: once most recent ones were slow, 1 waits at most.
        hammer(auto_port, "/?us=3000", threads=4, seconds=0.5)
        most_queued(auto_port)                  # count afresh from here
        hammer(auto_port, "/?us=3000", threads=8, seconds=1.5)
        assert most_queued(auto_port) <= 1
        # Fast again: deep again.
        hammer(auto_port, "/")
        assert most_queued(auto_port) >= 2
    finally:
        shutil.rmtree(d, ignore_errors=True)

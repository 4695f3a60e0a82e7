"""A retired generation drains: a request it is still serving when the
config changes is answered, however long it takes (as in Unit: no drain
deadline); its processes end once the router let go of its last worker."""

import re
import shutil
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh

# Longer than any fixed drain deadline Warren ever had (30 s).
SLOW_S = 33

SLOW = '''
import os, time

def application(environ, start_response):
    seconds = float(environ.get("QUERY_STRING") or 0)
    time.sleep(seconds)
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-Pid", str(os.getpid()))])
    return [("slept %s in %s" % (seconds, os.environ["GEN"])).encode()]
'''


@pytest.fixture
def slow(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-drain-")
    hh.write(appdir, "slow.py", SLOW)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def config(appdir, gen):
    return {"slow": {"type": "python", "path": appdir, "module": "slow",
                     "processes": 1, "environment": {"GEN": gen}}}


def test_long_request_outlives_a_reload(slow):
    w, appdir = slow
    port = hh.setup(w, [{"action": {"pass": "applications/slow"}}],
                    extra={"applications": config(appdir, "one")})
    first = hh.get(port, "/?0")
    assert (first.status, first.body) == (200, b"slept 0.0 in one")
    old_pid = int(first.header("X-Pid"))

    result = {}

    def long_request():
        with hh.Conn(port, timeout=SLOW_S + 20) as c:
            result["r"] = c.request("GET", "/?%d" % SLOW_S)

    t = threading.Thread(target=long_request)
    t.start()
    # The request is in the old worker before its generation is retired.
    wh.wait_for(lambda: hh.status(w)["applications"]["slow"]["requests"]["active"] == 1)
    s, j = w.put("/config/applications/slow", config(appdir, "two")["slow"])
    assert (s, j) == (200, wh.SUCCESS)
    r = hh.get(port, "/?0")
    assert (r.status, r.body) == (200, b"slept 0.0 in two")
    assert wh.proc_alive(old_pid)          # still serving its one request

    t.join(SLOW_S + 30)
    assert not t.is_alive()
    r = result["r"]
    assert (r.status, r.body) == (200, ("slept %.1f in one" % SLOW_S).encode())
    assert int(r.header("X-Pid")) == old_pid
    # Its request answered, the old generation ends on its own, unkilled.
    assert wh.wait_for(lambda: not wh.proc_alive(old_pid), timeout=5)
    with open(w.log_path) as f:
        log = f.read()
    assert re.search(r'app "slow" generation \d+ retired', log)
    assert "killing them" not in log


def test_idle_retired_generation_ends_at_once(slow):
    w, appdir = slow
    port = hh.setup(w, [{"action": {"pass": "applications/slow"}}],
                    extra={"applications": config(appdir, "one")})
    old_pid = int(hh.get(port, "/?0").header("X-Pid"))
    s, j = w.put("/config/applications/slow", config(appdir, "two")["slow"])
    assert (s, j) == (200, wh.SUCCESS)
    assert wh.wait_for(lambda: not wh.proc_alive(old_pid), timeout=5)
    assert hh.get(port, "/?0").body == b"slept 0.0 in two"
    with open(w.log_path) as f:
        assert "killing them" not in f.read()

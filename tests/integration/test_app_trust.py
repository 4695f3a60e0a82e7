"""What application processes say is not believed where it gives them power:
a Python zygote runs the application's code (it imported it), so the pid it
reports for a worker is checked by the prototype before main, which kills
workers as root, is told; the router never signals a worker itself."""

import os
import pwd
import shutil
import signal
import subprocess

import pytest

import http_helpers as hh
import warren_helpers as wh
from test_http_app import appdir, start, worker_pids  # noqa: F401 - fixture

assert appdir

# The app's import (in the zygote) answers the prototype itself before the
# zygote can: READY, then "worker 1 is pid VICTIM" (zygote.h's messages:
# type, worker, pid, err as four 32-bit integers).
LIAR = '''
import os, struct
fd = int(os.environ["WARREN_ZYGOTE_FD"])
os.write(fd, struct.pack("IIii", 1, 0, os.getpid(), 0))
os.write(fd, struct.pack("IIii", 3, 1, int(os.environ["VICTIM"]), 0))

def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
'''


@pytest.fixture
def victim():
    p = subprocess.Popen(["sleep", "600"])
    yield p
    p.kill()
    p.wait()


def test_a_zygote_lying_about_a_worker_pid_fails_the_start(warren_factory, victim):
    # The runtime from a --modulesdir nobody can reach (the checkout may be
    # private).
    rt = wh.runtimes_modulesdir()
    w = warren_factory(extra_args=["--modulesdir", rt])
    d = hh.make_root("warren-liar-")
    try:
        with open(os.path.join(d, "liar.py"), "w") as f:
            f.write(LIAR)
        os.chmod(os.path.join(d, "liar.py"), 0o644)
        before = w.config_bytes()
        s, j = w.put("/config", {
            "listeners": {"127.0.0.1:%d" % wh.free_port(): {"pass": "applications/liar"}},
            "applications": {"liar": {
                "type": "python", "path": d, "module": "liar", "processes": 1,
                "limits": {"timeout": 1},
                "environment": {"VICTIM": str(victim.pid)}}}})
        assert s == 500, j
        assert "the zygote said worker 1 is pid %d, which is not a child of the " \
               "prototype" % victim.pid in j["detail"], j
        assert w.config_bytes() == before
        assert victim.poll() is None, "the process the zygote named was killed"
    finally:
        shutil.rmtree(d, ignore_errors=True)
        shutil.rmtree(rt, ignore_errors=True)


def test_limits_timeout_of_an_http_worker_of_another_user(warren, appdir):
    """The router (its own user) could not signal it: main kills it."""
    w = warren
    port = start(w, appdir, user="daemon", group="daemon", limits={"timeout": 1})
    (pid,) = worker_pids(w)
    uid = [ln.split()[1] for ln in open("/proc/%d/status" % pid) if ln.startswith("Uid:")]
    assert uid == [str(pwd.getpwnam("daemon").pw_uid)], uid
    r = hh.get(port, "/sleep?n=3600")
    assert r.status == 503, r
    # Killed, not ended by SIGTERM when its channel closed: SIGKILL is what
    # the prototype reports.
    assert wh.wait_for(lambda: "killed by signal %d" % signal.SIGKILL in w.log(), 10), \
        w.log()[-2000:]
    assert "kill(worker" not in w.log()
    assert wh.wait_for(lambda: worker_pids(w) and pid not in worker_pids(w), 10)
    assert wh.wait_for(lambda: hh.get(port, "/").status == 200, 10)


@pytest.mark.parametrize("extra, warned", [
    ({}, True),
    ({"isolation": {"namespaces": {"pid": True}}}, False),
    ({"user": "daemon", "group": "daemon"}, False),
])
def test_an_app_that_could_signal_the_router_is_warned_of(warren, appdir, extra, warned):
    """Its default user is the router's and the controller's: without a pid
    namespace it sees them and may signal them."""
    w = warren
    port = start(w, appdir, **extra)
    assert hh.get(port, "/").status == 200
    said = "runs as the user of Warren's router and controller" in w.log()
    assert said == warned, w.log()[-1500:]

"""Signals to main: TERM/INT stop fast, QUIT stops gracefully, USR1 reopens the
log, HUP is ignored. Log line format."""

import os
import signal
import time

import pytest

import warren_helpers as wh

SUCCESS = wh.SUCCESS


def _with_listener(w):
    port = wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": [{"action": {"return": 200}}]}
    assert w.put("/config", cfg) == (200, SUCCESS)
    assert wh.tcp_connect(port)
    return port


@pytest.mark.parametrize("sig,limit", [(signal.SIGTERM, 2.0), (signal.SIGINT, 2.0),
                                       (signal.SIGQUIT, 5.0)],
                         ids=["TERM", "INT", "QUIT"])
def test_stop_signal(warren, sig, limit):
    port = _with_listener(warren)
    kids = warren.children()
    assert len(kids) == 2
    status = warren.stop(sig)      # raises if anything is left behind
    assert warren.stop_elapsed < limit, "took %.2fs" % warren.stop_elapsed
    assert status == 0, "exit status %r" % status
    assert not os.path.exists(warren.pid_path), "pid file left"
    assert not os.path.exists(warren.sock), "control socket file left"
    assert not wh.tcp_connect(port), "listener port still open"
    for p in kids:
        assert not wh.proc_alive(p)


def test_sighup_ignored(warren):
    port = _with_listener(warren)
    pids = {r: warren.pid(r) for r in wh.ROLES}
    before = warren.config_bytes()
    os.kill(warren.main_pid, signal.SIGHUP)
    time.sleep(0.5)
    assert warren.alive()
    assert {r: warren.pid(r) for r in wh.ROLES} == pids
    assert warren.config_bytes() == before
    assert wh.tcp_connect(port)


@pytest.mark.allow_alert
def test_sigusr1_reopens_log(warren):
    log = warren.log_path
    rotated = log + ".1"
    os.rename(log, rotated)
    os.kill(warren.main_pid, signal.SIGUSR1)
    assert wh.wait_for(lambda: os.path.exists(log), 3), "log not reopened"
    # nobody may still hold the rotated file open
    def holders():
        out = []
        for role in ("main",) + wh.ROLES:
            pid = warren.main_pid if role == "main" else warren.pid(role)
            for fd, t in (wh.proc_fds(pid) or {}).items():
                if t == rotated:
                    out.append((role, fd))
        return out
    assert wh.wait_for(lambda: not holders(), 3), \
        "still writing to the rotated log: %r" % holders()
    size_rotated = os.path.getsize(rotated)
    # make main and children log: a dead router is logged by main, the new
    # router starts; a config change goes through controller, main, router
    old_router = warren.pid("router")
    os.kill(old_router, signal.SIGKILL)
    new = warren.wait_new("router", old_router, 5)
    assert new
    assert wh.wait_for(lambda: warren.get("/config")[0] == 200, 5)
    _with_listener(warren)
    assert warren.put("/config/nope", 1)[0] == 400
    time.sleep(0.3)
    assert os.path.getsize(rotated) == size_rotated, \
        "lines still go to the rotated file"
    lines = warren.log().splitlines()
    pids = {int(m.group(2)) for l in lines if (m := wh.LOG_LINE_RE.match(l))}
    assert warren.main_pid in pids, lines
    warren.baseline("router")
    # the rotated copy is untouched by later writes and the fd counts did not grow


@pytest.mark.allow_alert
def test_sigusr1_twice_and_children_reopen(warren):
    """After two rotations, the children hold no fd on either old file."""
    log = warren.log_path
    for n in (1, 2):
        os.rename(log, "%s.%d" % (log, n))
        os.kill(warren.main_pid, signal.SIGUSR1)
        assert wh.wait_for(lambda: os.path.exists(log), 3)
    olds = {log + ".1", log + ".2"}

    def holders():
        out = []
        for role in ("main",) + wh.ROLES:
            pid = warren.main_pid if role == "main" else warren.pid(role)
            out += [(role, fd, t) for fd, t in (wh.proc_fds(pid) or {}).items()
                    if t in olds]
        return out
    assert wh.wait_for(lambda: not holders(), 3), holders()


@pytest.mark.allow_alert
def test_log_line_format(warren):
    """Every log line: YYYY/MM/DD HH:MM:SS [level] PID#TID message."""
    old = warren.pid("router")
    os.kill(old, signal.SIGKILL)
    assert warren.wait_new("router", old, 5)
    warren.baseline("router")
    _with_listener(warren)
    text = warren.log()
    lines = [l for l in text.splitlines() if l.strip()]
    assert lines, "empty log"
    bad = [l for l in lines if not wh.LOG_LINE_RE.match(l)]
    assert not bad, bad[:5]
    # timestamps are local time "now", not garbage
    first = lines[-1][:19]
    t = time.mktime(time.strptime(first, "%Y/%m/%d %H:%M:%S"))
    assert abs(time.time() - t) < 120, first

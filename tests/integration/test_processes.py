"""Process layout and privilege separation: main (root), controller and router
(unprivileged, no_new_privs), restarted by main when killed."""

import json
import os
import signal

import pytest

import warren_helpers as wh

SUCCESS = wh.SUCCESS


def creds(pid):
    st = wh.proc_status(pid)
    return (st["Uid"].split(), st["Gid"].split(), st["Groups"].split(),
            st["NoNewPrivs"])


def test_titles(warren):
    assert wh.proc_cmdline(warren.main_pid).split()[:2] == ["warren:", "main"]
    kids = warren.children()
    titles = sorted(" ".join(t.split()[:2]) for t in kids.values())
    assert titles == ["warren: controller", "warren: router"], kids
    # both are direct children of main
    for pid in kids:
        assert wh.proc_stat(pid)[1] == warren.main_pid


def test_main_is_root(warren):
    uid, gid, _, _ = creds(warren.main_pid)
    assert uid[0] == "0" and uid[1] == "0", uid


@pytest.mark.parametrize("role", wh.ROLES)
def test_child_runs_as_nobody(warren, role):
    uid, gid, groups, nnp = creds(warren.pid(role))
    assert uid == [str(wh.NOBODY_UID)] * 4, (role, uid)
    assert gid == [str(wh.NOGROUP_GID)] * 4, (role, gid)
    assert set(groups) <= {str(wh.NOGROUP_GID)}, (role, groups)


@pytest.mark.parametrize("role", wh.ROLES)
def test_child_no_new_privs(warren, role):
    assert creds(warren.pid(role))[3] == "1"


@pytest.mark.parametrize("role", wh.ROLES)
def test_child_has_no_capabilities(warren, role):
    st = wh.proc_status(warren.pid(role))
    assert int(st["CapEff"], 16) == 0, (role, st["CapEff"])
    assert int(st["CapPrm"], 16) == 0, (role, st["CapPrm"])


def _setup_listeners(w):
    port = wh.free_port()
    upath = os.path.join(w.dir, "l.sock")
    cfg = wh.base_config(w.dir, port=port)
    cfg["listeners"]["unix:" + upath] = {"pass": "routes"}
    assert w.put("/config", cfg) == (200, SUCCESS)
    assert wh.tcp_connect(port) and wh.unix_connect(upath)
    return cfg, port, upath


def _kill_and_check(w, role, cfg, port, upath):
    old = w.pid(role)
    before_cfg = w.config_bytes()
    log_len = len(w.log())
    os.kill(old, signal.SIGKILL)
    # The first restarts come after 0.1/0.2/0.4 s (the log says so, checked
    # below); the wait is a bound for a loaded machine, not a measurement.
    new = w.wait_new(role, old, timeout=10)
    assert new, "no new %s after kill -9 (children: %r)" % (role, w.children())
    # the killed process is reaped, not a zombie
    assert wh.wait_for(lambda: wh.proc_stat(old) is None
                       or wh.proc_stat(old)[1] != w.main_pid, 2), \
        "old %s %d not reaped by main" % (role, old)
    # API answers again, config intact
    assert wh.wait_for(lambda: _api_ok(w), 5), "control API does not answer"
    assert w.config_bytes() == before_cfg
    # the new process takes the same identity (it is seen as soon as it is
    # forked, still root for a moment)
    nobody = [str(wh.NOBODY_UID)] * 4
    assert wh.wait_for(lambda: creds(new)[0] == nobody, 5), creds(new)
    uid, gid, _, nnp = creds(new)
    assert uid == nobody and nnp == "1"
    assert wh.proc_cmdline(new).split()[:2] == ["warren:", role]
    # listeners still accept, and the router holds them
    assert wh.tcp_connect(port) and wh.unix_connect(upath)
    router = w.pid("router")
    assert wh.wait_for(lambda: wh.listen_inodes_tcp(port) & wh.socket_inodes_of(router), 3), \
        "router does not hold the TCP listen socket after restart"
    assert wh.wait_for(lambda: wh.listen_inodes_unix(upath) & wh.socket_inodes_of(router), 3), \
        "router does not hold the unix listen socket after restart"
    # main logged it
    new_lines = w.log()[log_len:].splitlines()
    mains = [l for l in new_lines if (m := wh.LOG_LINE_RE.match(l))
             and int(m.group(2)) == w.main_pid]
    assert mains, "main logged nothing about the dead %s: %r" % (role, new_lines)
    assert any(str(old) in l for l in mains), mains
    w.baseline(role)
    return new


def _api_ok(w):
    try:
        return w.request("GET", "/config", timeout=2).status == 200
    except OSError:
        return False


@pytest.mark.allow_alert
def test_kill_router(warren):
    cfg, port, upath = _setup_listeners(warren)
    _kill_and_check(warren, "router", cfg, port, upath)
    # changes still reach the new router: deleting the listener closes it
    key = "127.0.0.1:%d" % port
    assert warren.delete("/config/listeners/" + key) == (200, SUCCESS)
    assert wh.wait_for(lambda: not wh.tcp_connect(port), 3)


@pytest.mark.allow_alert
def test_kill_controller(warren):
    cfg, port, upath = _setup_listeners(warren)
    _kill_and_check(warren, "controller", cfg, port, upath)
    assert warren.put("/config/settings/http/idle_timeout", 99) == (200, SUCCESS)
    assert warren.get("/config/settings/http/idle_timeout") == (200, 99)


@pytest.mark.allow_alert
def test_kill_router_repeatedly(warren):
    cfg, port, upath = _setup_listeners(warren)
    for _ in range(3):
        _kill_and_check(warren, "router", cfg, port, upath)


@pytest.mark.allow_alert
def test_kill_both(warren):
    cfg, port, upath = _setup_listeners(warren)
    _kill_and_check(warren, "controller", cfg, port, upath)
    _kill_and_check(warren, "router", cfg, port, upath)
    warren.restart()
    assert warren.config() == cfg


@pytest.mark.allow_alert
def test_state_survives_controller_kill(warren):
    cfg, port, upath = _setup_listeners(warren)
    _kill_and_check(warren, "controller", cfg, port, upath)
    warren.restart()
    assert warren.config() == cfg


def test_children_exit_with_main(warren):
    """kill -9 of main: controller and router notice and exit (no orphans)."""
    kids = warren.children()
    assert len(kids) == 2
    os.kill(warren.main_pid, signal.SIGKILL)
    warren.proc.wait(5)
    left = wh.wait_for(lambda: not [p for p in kids if wh.proc_alive(p)], 3)
    assert left, "children still alive after main died: %r" % \
        {p: wh.proc_cmdline(p) for p in kids if wh.proc_alive(p)}
    warren.main_pid = None


def test_no_extra_processes_after_changes(warren):
    """Reconfiguring many times does not pile up processes."""
    for i in range(10):
        cfg = wh.base_config(warren.dir)
        assert warren.put("/config", cfg) == (200, SUCCESS)
    assert len(warren.pids("controller")) == 1
    assert len(warren.pids("router")) == 1


def test_change_during_router_restart_is_consistent(warren):
    """A change sent while the router is being replaced is either applied
    (200, in the config, listener open) or refused (error, config unchanged)."""
    for _ in range(3):
        before = warren.config_bytes()
        port = wh.free_port()
        key = "127.0.0.1:%d" % port
        old = warren.pid("router")
        os.kill(old, signal.SIGKILL)
        r = warren.request("PUT", "/config", json.dumps(
            {"listeners": {key: {"pass": "routes"}}, "routes": []}), timeout=10)
        new = warren.wait_new("router", old, 5)
        assert new
        if r.status == 200:
            assert r.json() == SUCCESS
            assert key in warren.config()["listeners"]
            assert wh.wait_for(lambda: wh.tcp_connect(port), 3)
        else:
            assert r.status >= 400 and isinstance(r.json().get("error"), str), r
            assert warren.config_bytes() == before
            assert not wh.tcp_connect(port)
        assert wh.wait_for(lambda: warren.get("/config")[0] == 200, 5)
        # once the router is back, the same change goes through (until the
        # new router says it is ready, a change is refused: "The router is
        # not running; try again shortly.")
        change = {"listeners": {key: {"pass": "routes"}}, "routes": []}
        assert wh.wait_for(lambda: warren.put("/config", change) == (200, SUCCESS), 10)
        assert wh.wait_for(lambda: wh.tcp_connect(port), 3)
        assert wh.wait_for(lambda: wh.listen_inodes_tcp(port)
                           & wh.socket_inodes_of(warren.pid("router")), 3)
    warren.baseline("router")

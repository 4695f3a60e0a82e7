"""Application generations in main (external apps, no isolation yet):
prototype and workers start before the PUT answers, run as the app's user
with its environment and directory, are replaced when they die, are
replaced by a new generation when the app changes, kept when it does not,
and leave nothing behind on delete, failure or stop."""

import grp
import os
import signal
import time

import http_helpers as hh
import warren_helpers as wh


def app_config(w, name="h", exe=None, **app):
    exe = exe or wh.app_binary(w.dir)
    a = {"type": "external", "executable": exe, "processes": 2}
    a.update(app)
    return {
        "listeners": {"127.0.0.1:%d" % w.port: {"pass": "applications/" + name}},
        "applications": {name: a},
    }


def put_app(w, **kw):
    w.port = getattr(w, "port", None) or wh.free_port()
    cfg = app_config(w, **kw)
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, wh.SUCCESS), j
    return cfg


def prototypes(w, name="h"):
    title = "warren: %s prototype" % name
    return sorted(p for p, t in w.children().items() if t == title)


def workers(w, name="h"):
    protos = prototypes(w, name)
    out = []
    for p, st in wh.descendants(w.main_pid).items():
        if st[1] in protos and st[0] not in ("Z", "X"):
            out.append(p)
    return sorted(out)


def app_pids(w, name="h"):
    return prototypes(w, name) + workers(w, name)


def wait_workers(w, n, name="h", timeout=5.0):
    ok = wh.wait_for(lambda: len(prototypes(w, name)) == 1 and len(workers(w, name)) == n,
                     timeout)
    assert ok, "expected 1 prototype + %d workers, got %r" % (n, w.children())
    w.baseline_all()      # the app's channels are not a leak
    return prototypes(w, name)[0], workers(w, name)


def ids(pid):
    st = wh.proc_status(pid)
    return int(st["Uid"].split()[0]), int(st["Gid"].split()[0])


def test_two_workers_up_with_titles_as_nobody(warren):
    w = warren
    cfg = put_app(w)
    proto, ws = wait_workers(w, 2)
    assert wh.proc_cmdline(proto) == "warren: h prototype"
    for p in ws:
        assert wh.proc_cmdline(p) == cfg["applications"]["h"]["executable"]
        assert ids(p) == (wh.NOBODY_UID, wh.NOGROUP_GID)
    assert ids(proto) == (wh.NOBODY_UID, wh.NOGROUP_GID)
    assert w.config() == cfg


def test_user_and_group(warren):
    w = warren
    put_app(w, user="root")
    proto, ws = wait_workers(w, 2)
    assert ids(proto) == (0, 0)
    assert all(ids(p) == (0, 0) for p in ws)
    daemon_gid = grp.getgrnam("daemon").gr_gid
    put_app(w, user="root", group="daemon")
    assert wh.wait_for(lambda: prototypes(w) and prototypes(w)[0] != proto
                       and len(prototypes(w)) == 1)
    proto, ws = wait_workers(w, 2)
    assert all(ids(p) == (0, daemon_gid) for p in [proto] + ws)


def test_scheduling_batch_by_default_normal_on_request(warren):
    """Workers (and their prototype) run SCHED_BATCH unless the app says
    "scheduling": "normal"; changing it starts a new generation."""
    w = warren
    put_app(w)
    proto, ws = wait_workers(w, 2)
    for p in [proto] + ws:
        assert os.sched_getscheduler(p) == os.SCHED_BATCH, p
    assert os.sched_getscheduler(w.main_pid) == os.SCHED_OTHER
    put_app(w, scheduling="normal")
    assert wh.wait_for(lambda: prototypes(w) and prototypes(w)[0] != proto
                       and len(prototypes(w)) == 1)
    proto, ws = wait_workers(w, 2)
    for p in [proto] + ws:
        assert os.sched_getscheduler(p) == os.SCHED_OTHER, p
    assert hh.get(w.port, "/").status == 200


def test_processes_zero_starts_none_and_answers_503(warren):
    """"processes": 0 starts no worker; a request is answered 503 at once
    instead of waiting for one that will never come. Given workers again,
    the app serves."""
    w = warren
    put_app(w, processes=0)
    s, j = w.get("/status/applications/h")
    assert (s, j["processes"]) == (200, {"running": 0, "starting": 0, "idle": 0}), j
    assert workers(w) == []
    r = hh.get(w.port, "/")
    assert r.status == 503, r
    put_app(w, processes=1)
    wait_workers(w, 1)
    assert hh.get(w.port, "/").status == 200


def test_unknown_user_refused(warren):
    w = warren
    before = w.config_bytes()
    w.port = wh.free_port()
    s, j = w.put("/config", app_config(w, user="no-such-user-xyz"))
    assert s == 500, j
    assert "no-such-user-xyz" in j["detail"], j
    assert w.config_bytes() == before
    assert not app_pids(w)


def test_environment_and_working_directory(warren):
    w = warren
    exe = wh.app_binary(w.dir, "envdump")
    out = os.path.join(w.dir, "dump")
    os.mkdir(out)
    os.chmod(out, 0o777)
    wd = os.path.join(w.dir, "wd")
    os.mkdir(wd)
    os.chmod(wd, 0o755)
    base = os.path.join(out, "env")
    put_app(w, exe=exe, processes=1, working_directory=wd,
          environment={"ENVDUMP_FILE": base, "APP_MODE": "test"})
    _, ws = wait_workers(w, 1)
    path = "%s.%d" % (base, ws[0])
    assert wh.wait_for(lambda: os.path.exists(path) and open(path).read().endswith("\n")
                       and "gid=" in open(path).read())
    lines = open(path).read().splitlines()
    env = dict(line.split("=", 1) for line in lines)
    assert env["APP_MODE"] == "test"
    assert env["WARREN_APP_NAME"] == "h"
    assert env["WARREN_WORKER_ID"].isdigit()
    assert env["WARREN_CHANNEL_FD"].isdigit()
    assert env["cwd"] == wd
    assert env["uid"] == str(wh.NOBODY_UID)
    assert "PATH" in env
    # warrend's own environment is not passed on
    assert "ASAN_OPTIONS" not in env and "PYTEST_CURRENT_TEST" not in env


def test_exec_failure_fails_the_put(warren):
    w = warren
    put_app(w)
    wait_workers(w, 2)
    old = app_pids(w)
    before = w.config_bytes()
    missing = os.path.join(w.dir, "no-such-program")
    s, j = w.put("/config", app_config(w, exe=missing))
    assert s == 500, j
    assert j["detail"] == ('Application "h" could not start: execve(%s) failed: '
                           'No such file or directory.' % missing), j
    assert w.config_bytes() == before
    # the failed generation is gone, the running one untouched
    assert wh.wait_for(lambda: app_pids(w) == old), (old, w.children())


def test_exec_failure_on_first_app_leaves_nothing(warren):
    w = warren
    w.port = wh.free_port()
    before = w.config_bytes()
    s, j = w.put("/config", app_config(w, exe="/nonexistent/app"))
    assert s == 500 and "execve(/nonexistent/app) failed" in j["detail"], j
    assert w.config_bytes() == before
    assert wh.wait_for(lambda: not app_pids(w)), w.children()


def test_exit_before_hello_fails_the_put(warren):
    w = warren
    w.port = wh.free_port()
    s, j = w.put("/config", app_config(w, exe="/bin/true"))
    assert s == 500, j
    assert j["detail"].startswith('Application "h" could not start: worker'), j
    assert "ended before saying hello: exited with code 0" in j["detail"], j
    assert wh.wait_for(lambda: not app_pids(w)), w.children()


def test_killed_worker_is_replaced(warren):
    w = warren
    put_app(w)
    proto, ws = wait_workers(w, 2)
    w.mark_log()
    os.kill(ws[0], signal.SIGKILL)
    assert wh.wait_for(lambda: len(workers(w)) == 2 and ws[0] not in workers(w), 5.0), \
        w.children()
    # A worker being forked bears the prototype's title until its exec.
    assert wh.wait_for(lambda: prototypes(w) == [proto], 5.0), w.children()
    assert ws[1] in workers(w)
    assert wh.wait_for(lambda: "killed by signal 9" in w.log())
    # Counted for /metrics, under the application's name.
    assert wh.wait_for(lambda: b'warren_application_worker_failures_total{application="h"} 1\n'
                       in w.request("GET", "/metrics").body), \
        w.request("GET", "/metrics").body.decode()


def test_changed_app_is_a_new_generation(warren):
    w = warren
    put_app(w)
    old = app_pids(w) if wait_workers(w, 2) else None
    put_app(w, environment={"X": "1"})
    assert wh.wait_for(lambda: len(prototypes(w)) == 1 and prototypes(w)[0] not in old
                       and len(workers(w)) == 2, 5.0), w.children()
    assert not set(app_pids(w)) & set(old)
    assert wh.wait_for(lambda: not any(wh.proc_alive(p) for p in old), 5.0)


def test_unchanged_app_keeps_its_processes(warren):
    w = warren
    cfg = put_app(w)
    wait_workers(w, 2)
    old = app_pids(w)
    cfg["listeners"]["127.0.0.1:%d" % wh.free_port()] = {"pass": "applications/h"}
    cfg["access_log"] = os.path.join(w.dir, "access.log")
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, wh.SUCCESS)
    time.sleep(0.3)
    assert app_pids(w) == old


def test_delete_app_leaves_nothing(warren):
    w = warren
    put_app(w)
    wait_workers(w, 2)
    old = app_pids(w)
    s, j = w.put("/config", {"listeners": {}, "applications": {}})
    assert (s, j) == (200, wh.SUCCESS)
    assert wh.wait_for(lambda: not any(wh.proc_alive(p) for p in old), 5.0), w.children()
    assert not app_pids(w)


def test_router_restart_respawns_workers(warren):
    w = warren
    put_app(w)
    proto, ws = wait_workers(w, 2)
    router = w.pid("router")
    os.kill(router, signal.SIGKILL)
    assert w.wait_new("router", router, 5.0)
    # The workers lost their channels with the router: replaced, by the
    # same prototype. One started before the new router was up is ended
    # and started again, so the state to wait for is the settled one (a
    # fork not yet renamed still bears the prototype's title).
    assert wh.wait_for(lambda: len(workers(w)) == 2 and not set(workers(w)) & set(ws)
                       and prototypes(w) == [proto], 10.0), w.children()
    w.baseline("router")


def test_stop_leaves_nothing(warren):
    w = warren
    put_app(w)
    wait_workers(w, 2)
    pids = app_pids(w)
    w.stop()          # raises if any process of main's tree is left
    assert not any(wh.proc_alive(p) for p in pids)


def test_saved_app_starts_with_warrend(warren):
    w = warren
    put_app(w)
    wait_workers(w, 2)
    w.restart()
    wait_workers(w, 2)

"""Command line of warrend: options, --version, --help, daemon mode."""

import os
import re
import socket
import stat
import subprocess
import time

import pytest

import warren_helpers as wh


def run(args, timeout=10):
    return subprocess.run([wh.BINARY] + args, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def test_version():
    r = run(["--version"])
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).decode()
    assert re.search(r"^warren version: \d+\.\d+\.\d+\S*$", out, re.M), out
    assert re.search(r"^build features:.*, TLS \(OpenSSL \d+\.\d+\.\d+", out, re.M), out


@pytest.mark.parametrize("opt", ["-h", "--help"])
def test_help(opt):
    r = run([opt])
    assert r.returncode == 0, r
    out = (r.stdout + r.stderr).decode()
    assert "usage" in out.lower(), out
    for o in ("--no-daemon", "--control", "--user", "--pid", "--log", "--statedir"):
        assert o in out, (o, out)


def _warren_procs():
    """Snapshot of live warrend processes that descend from this test process
    (the harness is a child subreaper, so a daemonized warrend is ours too)."""
    return wh.my_warren_procs()


def _no_new_processes(before):
    """warrend processes of ours that appeared since the snapshot."""
    time.sleep(0.3)
    return {p for p, t in _warren_procs().items() if before.get(p) != t}


def _kill_new(before):
    """Last resort after a failed test: SIGKILL warrend processes of ours
    that were not there before."""
    import signal
    for p in _no_new_processes(before):
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
        wh.reap(p)


@pytest.mark.parametrize("args,name", [
    (["--bogus"], "--bogus"),
    (["--no-daemon", "--frobnicate", "1"], "--frobnicate"),
    (["-z"], "-z"),
])
def test_unknown_option(args, name):
    before = _warren_procs()
    r = run(args)
    assert r.returncode != 0, r
    assert name.encode() in r.stderr, r.stderr
    assert not _no_new_processes(before)


@pytest.mark.parametrize("opt", ["--control", "--pid", "--log", "--statedir",
                                 "--user", "--group", "--control-mode",
                                 "--tmpdir", "--modulesdir"])
def test_missing_argument(opt):
    before = _warren_procs()
    r = run(["--no-daemon", opt])
    assert r.returncode != 0, r
    assert opt.encode() in r.stderr, r.stderr
    assert not _no_new_processes(before)


def test_unknown_user_refused():
    """--user naming no account: warrend must not run (exit non-zero, say why)."""
    w = wh.Warren(user="no-such-user-warren")
    try:
        r = subprocess.run(w.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        assert r.returncode != 0
        assert "no-such-user-warren" in r.stderr.decode() + w.log()
    finally:
        w.cleanup_dir()


def test_no_daemon_pid_file(warren):
    with open(warren.pid_path) as f:
        assert int(f.read().strip()) == warren.main_pid


def test_log_file_created(warren):
    assert os.path.isfile(warren.log_path)


def test_state_alias_and_modules_ignored(warren_factory, tmp_path):
    """--state is --statedir; --modules / --modulesdir are accepted, ignored."""
    w = warren_factory(start=False, extra_args=["--modules", "/nonexistent-mods",
                                                "--modulesdir", "/nonexistent-mods2"])
    alt = os.path.join(w.dir, "altstate")
    os.makedirs(alt)
    w.statedir = alt
    w.argv_orig = w.argv
    w.argv = lambda: [a if a != "--statedir" else "--state" for a in w.argv_orig()]
    w.start()
    port = wh.free_port()
    s, j = w.put("/config", {"listeners": {"127.0.0.1:%d" % port:
                                           {"pass": "routes"}},
                             "routes": [{"action": {"return": 200}}]})
    assert (s, j) == (200, wh.SUCCESS)
    assert wh.wait_for(lambda: os.path.exists(os.path.join(alt, "conf.json")), 3)


def test_control_mode(warren_factory):
    w = warren_factory(extra_args=["--control-mode", "0640"])
    assert stat.S_IMODE(os.stat(w.sock).st_mode) == 0o640


def test_control_user_group(warren_factory):
    w = warren_factory(extra_args=["--control-user", "nobody",
                                   "--control-group", "nogroup"])
    st = os.stat(w.sock)
    assert (st.st_uid, st.st_gid) == (wh.NOBODY_UID, wh.NOGROUP_GID)


def test_control_tcp(warren_factory):
    port = wh.free_port()
    w = warren_factory(control="127.0.0.1:%d" % port)
    s, j = w.get("/")
    assert s == 200 and j["config"] == {}
    assert not os.path.exists(w.sock)


@pytest.mark.skipif(not wh.ipv6_loopback_ok(), reason="no IPv6 loopback")
def test_control_tcp6(warren_factory):
    port = wh.free_port(socket.AF_INET6, "::1")
    w = warren_factory(control="[::1]:%d" % port)
    s, j = w.get("/config")
    assert (s, j) == (200, {})


def test_user_and_default_group(warren_factory):
    """--user daemon: children run as daemon with daemon's primary group."""
    import pwd
    pw = pwd.getpwnam("daemon")
    w = warren_factory(user="daemon")
    for role in wh.ROLES:
        st = wh.proc_status(w.pid(role))
        assert st["Uid"].split() == [str(pw.pw_uid)] * 4, (role, st["Uid"])
        assert st["Gid"].split() == [str(pw.pw_gid)] * 4, (role, st["Gid"])


def test_user_and_group(warren_factory):
    import grp
    gid = grp.getgrnam("daemon").gr_gid
    w = warren_factory(user="nobody", group="daemon")
    for role in wh.ROLES:
        st = wh.proc_status(w.pid(role))
        assert st["Uid"].split() == [str(wh.NOBODY_UID)] * 4, (role, st["Uid"])
        assert st["Gid"].split() == [str(gid)] * 4, (role, st["Gid"])


def _adopt(w):
    """Take the daemon's pid from the pid file so the test can stop it."""
    try:
        with open(w.pid_path) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        return None
    st = wh.proc_stat(pid)
    if st is None:
        return None
    w.main_pid, w.main_start = pid, st[2]
    w.seen[pid] = st[2]
    w.children()
    return pid


def _cleanup_daemon(w):
    try:
        if w.main_pid is None:
            _adopt(w)
        if w.main_pid is not None and w.alive():
            w.stop()
    finally:
        w.kill_all()
        w.cleanup_dir()


class TestDaemonMode:
    def test_daemonize(self):
        w = wh.Warren(daemon=True)
        out = open(os.path.join(w.dir, "out.txt"), "wb")
        try:
            r = subprocess.run(w.argv(), stdin=subprocess.DEVNULL, stdout=out,
                               stderr=out, timeout=10)
            assert r.returncode == 0, r
            # ready when the command returns: socket bound, pid file written
            assert os.path.exists(w.pid_path)
            pid = _adopt(w)
            assert pid, "pid file does not name a live process"
            assert wh.proc_cmdline(pid).split()[:2] == ["warren:", "main"]
            assert wh.proc_status(pid)["Uid"].split()[0] == "0"
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(w.sock)          # no retry: must be bound already
            s.close()
            s_, j = w.get("/")
            assert s_ == 200 and j["config"] == {}
            w.wait_roles()
            # session leader, detached from our session
            assert os.getsid(pid) != os.getsid(0)
            assert w.put("/config", {"routes": []}) == (200, wh.SUCCESS)
            w.stop()
            assert not os.path.exists(w.pid_path)
            assert not os.path.exists(w.sock)
            w.check_log()
            starts = [l for l in w.log().splitlines() if " started" in l
                      and "#%d " % pid in l and "controller" not in l
                      and "router" not in l]
            assert len(starts) <= 1, "start line logged more than once: %r" % starts
        finally:
            out.close()
            _cleanup_daemon(w)

    def test_daemon_detaches_stdio(self):
        """The daemon and its children must not keep the caller's stdout/stderr
        open (think `warrend | logger`, or a supervisor capturing output): the
        caller sees EOF on its pipes once the launcher has exited."""
        import select
        w = wh.Warren(daemon=True)
        try:
            p = subprocess.Popen(w.argv(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            try:
                rc = p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                pytest.fail("warrend (daemon mode) launcher did not exit in 10 s")
            assert rc == 0
            assert _adopt(w), "no daemon after a successful start"
            open_pipes = {p.stdout.fileno(), p.stderr.fileno()}
            end = time.monotonic() + 3
            while open_pipes and time.monotonic() < end:
                r, _, _ = select.select(list(open_pipes), [], [], 0.1)
                for fd in r:
                    if not os.read(fd, 65536):
                        open_pipes.discard(fd)
            p.stdout.close()
            p.stderr.close()
            if open_pipes:
                holders = []
                for pid in [w.main_pid] + list(w.children()):
                    fds = wh.proc_fds(pid) or {}
                    holders += ["%s fd %d -> %s" % (wh.proc_cmdline(pid), fd, t)
                                for fd, t in fds.items()
                                if fd in (1, 2) and t.startswith("pipe:")]
                pytest.fail("the caller's stdout/stderr pipes are still held "
                            "after warrend daemonized: %r" % holders)
        finally:
            _cleanup_daemon(w)

    def test_daemon_start_fails_cleanly(self):
        """Daemon mode with a control address in use: non-zero exit, no
        process left behind."""
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        w = wh.Warren(daemon=True, control="127.0.0.1:%d" % port)
        before = _warren_procs()
        try:
            r = subprocess.run(w.argv(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=10)
            assert r.returncode != 0
            assert not _no_new_processes(before)
            assert not os.path.exists(w.pid_path)
        finally:
            busy.close()
            _adopt(w)
            _cleanup_daemon(w)
            _kill_new(before)

    def test_no_daemon_start_fails_cleanly(self):
        busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        w = wh.Warren(control="127.0.0.1:%d" % port)
        before = _warren_procs()
        try:
            r = subprocess.run(w.argv(), stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               timeout=10)
            assert r.returncode != 0
            assert not _no_new_processes(before)
        finally:
            busy.close()
            w.cleanup_dir()
            _kill_new(before)

"""The sandbox seen by someone trying to get out of it (docs/isolation.md,
"Security model"): what an app process holds (descriptors to host objects),
the calls that would bypass the seccomp filter, the credentials a uid-0 app
could regain on exec, and processes that try to outlive their generation.
"""

import json
import os
import shutil
import signal
import stat
import subprocess
import uuid

import pytest

import http_helpers as hh
import iso_helpers as ih
import warren_helpers as wh

EPERM = os.strerror(1)
EAFNOSUPPORT = os.strerror(97)
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIGSYS = 31
SECBIT_NOROOT = 1 << 0
SECBIT_NOROOT_LOCKED = 1 << 1

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")

# rootfs modes: pivot_root in a mount namespace, chroot without one
ROOTFS_MODES = {
    "pivot": {"namespaces": {"mount": True, "pid": True}},
    "chroot": {},
}


def fds_of(pid):
    """{fd: what it is} of a host pid: the link text, and "dir" for a
    directory (the one kind of fd that opens a way out of a rootfs)."""
    out = {}
    base = "/proc/%d/fd" % pid
    for name in os.listdir(base):
        path = os.path.join(base, name)
        try:
            link = os.readlink(path)
            mode = os.stat(path).st_mode
        except OSError:
            continue
        out[int(name)] = "dir" if stat.S_ISDIR(mode) else link
    return out


def ppid_of(pid):
    return int(wh.proc_status(pid)["PPid"])


# --------------------------------------------------------------------------
# descriptors

@pytest.mark.parametrize("mode", sorted(ROOTFS_MODES))
def test_worker_holds_only_stdio_and_its_channel(warren, mode):
    """A worker of a sandboxed app has its stdio and its channel, nothing
    else: no rootfs, program, cgroup or log directory fd to escape through,
    none of main's channels, no listen socket. Its prototype (our code,
    not the app's) holds no directory either once it has entered the
    rootfs."""
    w = warren
    root = ih.make_rootfs(w)
    iso = dict(ROOTFS_MODES[mode], rootfs=root)
    port, _ = ih.start_inspect(w, iso)
    rep = ih.report(port)
    pid = ih.worker_host_pid(w, rep)
    fds = fds_of(pid)
    extra = {fd: what for fd, what in fds.items() if fd > 2}
    assert len(extra) == 1 and list(extra.values())[0].startswith("socket:"), fds
    assert "dir" not in fds.values(), fds
    proto = fds_of(ppid_of(pid))
    assert "dir" not in proto.values(), proto


def test_worker_without_rootfs_holds_only_stdio_and_its_channel(warren):
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}})
    pid = ih.worker_host_pid(w, ih.report(port))
    fds = fds_of(pid)
    extra = {fd: what for fd, what in fds.items() if fd > 2}
    assert len(extra) == 1 and list(extra.values())[0].startswith("socket:"), fds


# --------------------------------------------------------------------------
# seccomp: calls that would go around the filter

def test_seccomp_denies_filter_bypasses(warren):
    """io_uring runs socket()/openat() in kernel workers the filter never
    sees; process_vm_readv reads another process; socketpair is the other
    way to an AF_ALG socket; the x32 ABI has its own syscall numbers."""
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}, "seccomp": False})
    host = ih.report(port)
    # on this host, without the filter, these calls work (else the test
    # below could not tell the filter apart)
    assert host["io_uring"] == "ok", host["io_uring"]
    assert host["process_vm_readv"] == "ok", host["process_vm_readv"]
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}}, port=port)
    rep = ih.report(port)
    assert rep["seccomp"] == 2
    assert rep["io_uring"] == EPERM, rep["io_uring"]
    assert rep["process_vm_readv"] == EPERM, rep["process_vm_readv"]
    assert rep["af_alg_pair"] == EAFNOSUPPORT, rep["af_alg_pair"]
    assert rep["x32"] == "killed by signal %d" % SIGSYS, (rep["x32"], host["x32"])


# --------------------------------------------------------------------------
# credentials

@pytest.mark.parametrize("userns", [False, True], ids=["host-root", "userns-root"])
def test_root_app_ends_with_five_empty_sets_and_noroot(warren, userns):
    """A uid-0 app without "capabilities": inheritable, permitted,
    effective, bounding and ambient all empty, and securebits NOROOT
    (locked) so that no exec gives uid 0 capabilities back - on the host,
    or as root of its own user namespace."""
    w = warren
    iso = {"namespaces": {"pid": True}}
    app = {"user": "root"}
    if userns:
        iso = {"namespaces": {"pid": True, "credential": True},
               "uidmap": [{"container": 0, "host": wh.NOBODY_UID, "size": 1}],
               "gidmap": [{"container": 0, "host": wh.NOGROUP_GID, "size": 1}]}
        app = {}                        # nobody, root inside
    port, _ = ih.start_inspect(w, iso, **app)
    rep = ih.report(port)
    assert rep["uid"] == 0
    bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED
    assert rep["securebits"] & bits == bits, rep["securebits"]
    st = wh.proc_status(ih.worker_host_pid(w, rep))
    for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(st[k], 16) == 0, (k, st[k])


def test_listed_capability_survives_noroot(warren):
    """NOROOT does not take a listed capability from a root app: it comes
    through exec as an ambient one."""
    w = warren
    port, _ = ih.start_inspect(w, {"capabilities": ["net_bind_service"]}, user="root")
    rep = ih.report(port)
    assert rep["securebits"] & SECBIT_NOROOT
    assert int(rep["cap_eff"], 16) == 1 << 10, rep["cap_eff"]


# --------------------------------------------------------------------------
# processes that try to outlive their generation

def leave_daemon(port):
    """GET /orphan: the app double-forks a setsid'd sleeper; its pid (a
    host pid: these apps have no pid namespace)."""
    r = hh.get(port, "/orphan")
    assert r.status == 200, r
    return json.loads(r.body)["pid"]


def alive(pid):
    """Running, not a zombie waiting for its reaper."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def reap_left(pid):
    """A failed test must not leave its sleeper behind (it is ours: made by
    this test, alive, so its pid cannot have been reused)."""
    if alive(pid):
        os.kill(pid, signal.SIGKILL)


NO_PIDNS = {
    "plain": None,
    "sandbox": {"namespaces": {"uname": True}},
    "chroot": "rootfs",
}


def start_no_pidns(w, kind):
    iso = NO_PIDNS[kind]
    if iso == "rootfs":
        iso = {"rootfs": ih.make_rootfs(w)}
    return ih.start_inspect(w, iso)


@pytest.mark.parametrize("kind", sorted(NO_PIDNS))
def test_setsid_daemon_dies_with_its_generation(warren, kind):
    """Without a pid namespace, killing a generation's process group misses
    a process that called setsid; it must still not survive the
    generation's teardown."""
    w = warren
    port, _ = start_no_pidns(w, kind)
    proto, _ = w.app_processes()
    pid = leave_daemon(port)
    assert alive(pid)
    # out of its generation's session and process group (the prototype's)
    assert os.getsid(pid) not in proto and os.getpgid(pid) not in proto
    # adopted by its prototype while the generation runs
    assert ppid_of(pid) in proto, (ppid_of(pid), proto)
    try:
        s, j = w.put("/config", {"listeners": {}, "applications": {}})
        assert (s, j) == (200, wh.SUCCESS)
        assert wh.wait_for(lambda: not alive(pid), 5.0), wh.proc_status(pid)
    finally:
        reap_left(pid)


def test_setsid_daemon_dies_when_its_prototype_is_killed(warren):
    """The prototype killed outright (the drain timeout's SIGKILL, a crash):
    what it had adopted goes to main, which kills it."""
    w = warren
    port, _ = start_no_pidns(w, "sandbox")
    protos, _ = w.app_processes()
    pid = leave_daemon(port)
    proto = ppid_of(pid)
    assert proto in protos, (proto, protos)       # adopted by its prototype
    try:
        os.kill(proto, signal.SIGKILL)
        assert wh.wait_for(lambda: not alive(pid), 5.0), wh.proc_status(pid)
    finally:
        reap_left(pid)
    # the app comes back, served by a new prototype
    assert wh.wait_for(lambda: ih.report(port)["pid"] > 0, 5.0)


# --------------------------------------------------------------------------
# cgroups: warrend removes only what it made

def _cgroup_or_skip():
    mnt = ih.cgroup2_mount()
    if mnt is None:
        pytest.skip("no cgroup v2 hierarchy is mounted here")
    return mnt


def _no_app_left(w):
    protos, workers = w.app_processes()
    return not protos and not workers


def test_cgroup_made_by_the_administrator_stays(warren):
    """An existing cgroup (the administrator's, perhaps with limits set)
    is used, and left in place when the app is gone."""
    w = warren
    mnt = _cgroup_or_skip()
    path = "/warren-it-adm-%s" % uuid.uuid4().hex[:8]
    os.mkdir(mnt + path)
    try:
        port, _ = ih.start_inspect(w, {"cgroup": {"path": path}})
        pid = ih.worker_host_pid(w, ih.report(port))
        assert ih.cgroup2_of(pid) == path
        ih.put(w, {"listeners": {}, "applications": {}})
        assert wh.wait_for(lambda: _no_app_left(w), 5.0)
        assert wh.wait_for(lambda: ih.read(mnt + path + "/cgroup.procs") == "", 5.0)
        # warrend is done with it (its generation released): still there
        s, j = w.put("/config", {"listeners": {}, "applications": {}})
        assert (s, j) == (200, wh.SUCCESS)
        assert os.path.isdir(mnt + path)
    finally:
        if os.path.isdir(mnt + path):
            os.rmdir(mnt + path)


def test_cgroup_shared_by_generations_goes_with_the_last(warren):
    """A cgroup warrend made for an app, used by the next generation too
    (a reconfiguration), is removed once the last one is gone."""
    w = warren
    mnt = _cgroup_or_skip()
    path = "/warren-it-gen-%s" % uuid.uuid4().hex[:8]
    try:
        port, cfg = ih.start_inspect(w, {"cgroup": {"path": path}})
        first = ih.worker_host_pid(w, ih.report(port))
        cfg["applications"][ih.APP]["environment"] = {"MARKER": "second"}
        ih.put(w, cfg)
        assert wh.wait_for(lambda: ih.report(port)["env_marker"] == "second", 5.0)
        assert wh.wait_for(lambda: not alive(first), 5.0)
        assert os.path.isdir(mnt + path)                # the new one is in it
        ih.put(w, {"listeners": {}, "applications": {}})
        assert wh.wait_for(lambda: not os.path.isdir(mnt + path), 5.0), path
    finally:
        if os.path.isdir(mnt + path):
            os.rmdir(mnt + path)


# --------------------------------------------------------------------------
# the app's log files

LINKS = {
    # the file itself is a link to a host path
    "file": ("out.log", "out.log"),
    # a directory on the way is a link to a host directory
    "dir": ("logs", "logs/out.log"),
}


@pytest.mark.parametrize("mode", sorted(ROOTFS_MODES))
@pytest.mark.parametrize("link", sorted(LINKS))
def test_log_file_link_planted_in_the_rootfs_is_not_followed(warren, mode, link):
    """"stdout" inside the rootfs, where an earlier generation (writing as
    the app's user) replaced part of the path with a link to the host: the
    prototype, still root when it opens the file, must not follow it."""
    w = warren
    root = ih.make_rootfs(w)
    host_dir = os.path.join(w.dir, "host-dir")
    os.mkdir(host_dir)
    planted, rel = LINKS[link]
    os.symlink(host_dir if link == "dir" else os.path.join(host_dir, "out.log"),
               os.path.join(root, planted))
    port = wh.free_port()
    cfg = ih.app_config(port, dict(ROOTFS_MODES[mode], rootfs=root), ih.INSPECT_IN_ROOT,
                        stdout=os.path.join(root, rel))
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert "Too many levels of symbolic links" in j["detail"], j
    assert os.listdir(host_dir) == []


def test_log_file_is_opened_as_the_app(warren):
    """A log file outside the rootfs is opened with the app's rights, as a
    worker without a rootfs opens it: created as the app's user."""
    w = warren
    root = ih.make_rootfs(w)
    logs = os.path.join(w.dir, "app-logs")
    os.mkdir(logs)
    os.chown(logs, wh.NOBODY_UID, wh.NOGROUP_GID)
    out = os.path.join(logs, "out.log")
    port = wh.free_port()
    cfg = ih.app_config(port, {"namespaces": {"mount": True, "pid": True}, "rootfs": root},
                        ih.INSPECT_IN_ROOT, stdout=out)
    ih.put(w, cfg)
    st = os.stat(out)
    assert (st.st_uid, st.st_gid) == (wh.NOBODY_UID, wh.NOGROUP_GID)


def test_python_worker_holds_only_stdio_and_its_channel(warren_factory):
    """The same for the Python runtime, whose workers are forked by a
    zygote that loaded the app: none of the zygote's own fds, and no
    directory."""
    with ih.python_in_rootfs(warren_factory, {"mount": True, "pid": True}) as (w, port):
        pid = ih.worker_host_pid(w, ih.report(port))
        fds = fds_of(pid)
        extra = {fd: what for fd, what in fds.items() if fd > 2}
        assert len(extra) == 1 and list(extra.values())[0].startswith("socket:"), fds
        assert "dir" not in fds.values(), fds


def test_http_worker_holds_only_stdio_and_its_listen_socket(warren):
    """An HTTP app's worker: fd 3 (its listen socket) and nothing else of
    Warren's: not the channel the prototype keeps for it, no directory."""
    w = warren
    d = os.path.join(w.dir, "httpapp")
    os.mkdir(d)
    shutil.copy(os.path.join(REPO, "tests", "apps", "http_app.py"), d)
    os.chmod(d, 0o755)
    os.chmod(os.path.join(d, "http_app.py"), 0o644)
    port = hh.setup(w, [{"action": {"pass": "applications/web"}}], extra={
        "applications": {"web": {
            "type": "external", "protocol": "http", "executable": "/usr/bin/python3",
            "arguments": [os.path.join(d, "http_app.py")], "processes": 1,
            "isolation": {"namespaces": {"pid": True}}}}})
    r = hh.get(port, "/env")
    assert r.status == 200, r
    _, workers = w.app_processes()
    assert len(workers) == 1, workers
    pid = workers.pop()

    def extra():
        return {fd: what for fd, what in fds_of(pid).items() if fd > 2}
    # The connection the request came on may still be closing in the
    # server (fd 4 for a moment): wait for it; a leaked fd stays.
    wh.wait_for(lambda: list(extra()) == [3], 5.0)
    fds = extra()
    assert list(fds) == [3] and fds[3].startswith("socket:"), fds_of(pid)


# --------------------------------------------------------------------------
# chroot mode: main unmounts only its own mounts

def _mount_id(point):
    for m in ih.parse_mountinfo(ih.read("/proc/self/mountinfo")):
        if m["point"] == point:
            return int(m["line"].split()[0])
    return None


def test_chroot_release_never_unmounts_a_mount_not_its_own(warren):
    """The administrator replaced warrend's /tmp mount of a chroot rootfs
    with one of their own (which, mount ids being reused, may well get the
    very id warrend's had): when the generation is gone, theirs stays."""
    w = warren
    root = ih.make_rootfs(w)
    tmp = os.path.join(root, "tmp")
    port, _ = ih.start_inspect(w, {"rootfs": root})
    assert ih.tmp_is_tmpfs(ih.report(port))
    old = _mount_id(tmp)
    assert old is not None
    subprocess.run(["umount", tmp], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "admins", tmp], check=True)
    try:
        new = _mount_id(tmp)
        s, j = w.put("/config", {"listeners": {}, "applications": {}})
        assert (s, j) == (200, wh.SUCCESS)
        assert wh.wait_for(lambda: _no_app_left(w), 5.0)
        # main releases the generation once its prototype is reaped
        s, j = w.put("/config", {"listeners": {}, "applications": {}})
        assert _mount_id(tmp) == new, (old, new)
    finally:
        while _mount_id(tmp) is not None:
            subprocess.run(["umount", tmp], check=True)

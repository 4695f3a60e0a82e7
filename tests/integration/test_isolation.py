"""Application isolation (docs/isolation.md), seen from inside and outside.

Each test runs the real warrend (as root), configures the inspection app
(tests/apps/inspect.c, or its WSGI twin inspect_wsgi.py) with an
"isolation" object and GETs its report through a listener: namespaces, ids,
mounts, cgroup, rlimits, capabilities, seccomp, no_new_privs as the app sees
them, compared with the host's view of the same worker (/proc/PID/...).
The symlink attack, impossible combinations and failing sandbox steps must
fail cleanly: the PUT refused with the reason, the running config serving,
nothing mounted on the host.

The reload storm is in test_isolation_storm.py.
"""

import collections
import errno
import json
import os
import shutil
import socket
import uuid

import pytest

import http_helpers as hh
import iso_helpers as ih
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOBODY = wh.NOBODY_UID
NOGROUP = wh.NOGROUP_GID
CAP_KILL = 5
CAP_NET_BIND_SERVICE = 10
ZERO_CAPS = "%016x" % 0
# the rootfs set-up most tests use: a mount and pid namespace of their own
ROOT_NS = {"mount": True, "pid": True}
ROOT_NS_USER = {"credential": True, "mount": True, "pid": True}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="isolation needs root")


# --------------------------------------------------------------------------
# helpers

def host_ns(w):
    return ih.ns_of(w.main_pid)


def host_af_alg():
    """What socket(AF_ALG) does on this kernel without a filter."""
    try:
        socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0).close()
        return "ok"
    except OSError as e:
        return os.strerror(e.errno)


def serving_pid(port):
    return ih.report(port)["pid"]


def refused_at_start(w, cfg, name=ih.APP):
    """PUT cfg: it must fail with 500 and a start failure's detail, leaving
    the running config byte-identical. Returns the detail."""
    before = w.config_bytes()
    s, j = w.put("/config", cfg)
    assert s == 500, (s, j)
    assert w.config_bytes() == before
    return j["detail"]


# --------------------------------------------------------------------------
# the inspection app itself, without isolation

def test_inspect_app_on_the_host(warren):
    """Without isolation the app sees the host: warrend's namespaces, the
    host name, no filter, and every probe allowed."""
    w = warren
    port, _ = ih.start_inspect(w, environment={"MARKER": "m-42"})
    rep = ih.report(port)
    assert rep["ns"] == host_ns(w)
    assert rep["hostname"] == socket.gethostname()
    assert (rep["uid"], rep["gid"], rep["euid"], rep["egid"]) == (NOBODY, NOGROUP,
                                                                   NOBODY, NOGROUP)
    assert rep["seccomp"] == 0 and rep["keyctl"] == "ok" and rep["userfaultfd"] == "ok"
    assert rep["af_alg"] == host_af_alg()
    assert rep["env_marker"] == "m-42"
    assert ih.mount_at(rep, "/") is not None
    assert ih.exists(port, "/proc/self") is True
    assert ih.exists(port, w.dir + "/no such file") is False
    pid = ih.worker_host_pid(w, rep)
    assert ih.host_ids(pid) == (NOBODY, NOGROUP)


# --------------------------------------------------------------------------
# namespaces

@pytest.mark.parametrize("key", sorted(ih.NS_OF))
def test_each_namespace_alone(warren, key):
    """One namespace on: exactly that one differs from warrend's."""
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {key: True}})
    rep = ih.report(port)
    host = host_ns(w)
    for n in ih.NS_KEYS:
        if n == ih.NS_OF[key]:
            assert rep["ns"][n] != host[n], (key, n, rep["ns"])
        else:
            assert rep["ns"][n] == host[n], (key, n, rep["ns"])
    # the host sees the worker in the same namespace the app reports
    pid = ih.worker_host_pid(w, rep)
    assert ih.ns_of(pid)[ih.NS_OF[key]] == rep["ns"][ih.NS_OF[key]]


def test_all_namespaces_together(warren):
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {k: True for k in ih.NS_OF}})
    rep = ih.report(port)
    host = host_ns(w)
    assert all(rep["ns"][n] != host[n] for n in ih.NS_KEYS), (rep["ns"], host)
    # pid namespace: the app's pid is not its host pid, NSpid says both
    hpid = ih.worker_host_pid(w, rep)
    nspid = wh.proc_status(hpid)["NSpid"].split()
    assert len(nspid) == 2 and int(nspid[1]) == rep["pid"] != hpid
    # uname without "hostname": the host's name is kept (as Unit)
    assert rep["hostname"] == socket.gethostname()
    # the default id map: the app's own ids inside and outside
    assert (rep["uid"], rep["gid"]) == (NOBODY, NOGROUP)
    assert ih.host_ids(hpid) == (NOBODY, NOGROUP)


def loopback_probe(port, target):
    r = hh.get(port, "/loopback?port=%d" % target)
    assert r.status == 200, r
    return json.loads(r.body)


def test_network_namespace_has_its_own_loopback_up(warren):
    """In a network namespace lo is up: the app binds 127.0.0.1 and
    connects to itself; the host's listeners on 127.0.0.1 (warrend's own,
    which serves this very request) stay out of reach: refused, as on a
    loopback with nothing listening."""
    w = warren
    port, _ = ih.start_inspect(w)
    # On the host the probe reaches warrend's listener: it works.
    assert loopback_probe(port, port) == {"self": "ok", "host": "ok"}
    port, _ = ih.start_inspect(w, {"namespaces": {"network": True}})
    rep = loopback_probe(port, port)
    assert rep == {"self": "ok", "host": "connect: " + os.strerror(errno.ECONNREFUSED)}, rep


def test_pid_namespace_hides_the_host(warren):
    """In a pid namespace with its own /proc the app sees only its own
    generation: not warrend's pid, not the test's."""
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root})
    rep = ih.report(port)
    assert rep["ns"]["pid"] != host_ns(w)["pid"]
    assert ih.exists(port, "/proc/self") is True
    assert ih.exists(port, "/proc/%d" % rep["pid"]) is True
    # the app's namespace holds its prototype and worker: pids 1 and 2
    for host_pid in (w.main_pid, os.getpid()):
        if host_pid > 2:
            assert ih.exists(port, "/proc/%d" % host_pid) is False, host_pid


def test_hostname_in_uname_namespace(warren):
    w = warren
    name = "warren-box-%s" % uuid.uuid4().hex[:6]
    before = socket.gethostname()
    port, _ = ih.start_inspect(w, {"namespaces": {"uname": True}, "hostname": name})
    rep = ih.report(port)
    assert rep["hostname"] == name
    assert rep["ns"]["uts"] != host_ns(w)["uts"]
    assert socket.gethostname() == before


# --------------------------------------------------------------------------
# uid / gid maps

def test_default_id_map(warren):
    """credential on, no map: the app's uid/gid map to themselves, size 1."""
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"credential": True}})
    rep = ih.report(port)
    assert (rep["uid"], rep["gid"], rep["euid"], rep["egid"]) == (NOBODY, NOGROUP,
                                                                   NOBODY, NOGROUP)
    pid = ih.worker_host_pid(w, rep)
    assert ih.host_ids(pid) == (NOBODY, NOGROUP)
    assert ih.read("/proc/%d/uid_map" % pid).split() == [str(NOBODY), str(NOBODY), "1"]
    assert ih.read("/proc/%d/gid_map" % pid).split() == [str(NOGROUP), str(NOGROUP), "1"]
    assert rep["ns"]["user"] != host_ns(w)["user"]


def test_explicit_map_root_inside_nobody_outside(warren):
    """{"container": 0, "host": 65534}: user nobody is root inside its
    namespace and still nobody to the host."""
    w = warren
    iso = {"namespaces": {"credential": True},
           "uidmap": [{"container": 0, "host": NOBODY, "size": 1}],
           "gidmap": [{"container": 0, "host": NOGROUP, "size": 1}]}
    port, _ = ih.start_inspect(w, iso)
    rep = ih.report(port)
    assert (rep["uid"], rep["gid"], rep["euid"], rep["egid"]) == (0, 0, 0, 0)
    pid = ih.worker_host_pid(w, rep)
    assert ih.host_ids(pid) == (NOBODY, NOGROUP)
    assert ih.read("/proc/%d/uid_map" % pid).split() == ["0", str(NOBODY), "1"]
    # root inside, yet no capability: none is listed
    assert rep["cap_eff"] == rep["cap_prm"] == ZERO_CAPS


def test_explicit_map_ranges(warren):
    """A 65536-id range: nobody (65534) inside is 165534 outside."""
    w = warren
    base = 100000
    iso = {"namespaces": {"credential": True},
           "uidmap": [{"container": 0, "host": base, "size": 65536}],
           "gidmap": [{"container": 0, "host": base, "size": 65536}]}
    port, _ = ih.start_inspect(w, iso)
    rep = ih.report(port)
    assert (rep["uid"], rep["gid"]) == (NOBODY, NOGROUP)
    pid = ih.worker_host_pid(w, rep)
    assert ih.host_ids(pid) == (base + NOBODY, base + NOGROUP)
    assert ih.read("/proc/%d/uid_map" % pid).split() == ["0", str(base), "65536"]


def test_unmapped_uid_is_refused(warren):
    w = warren
    good, _ = ih.start_inspect(w)
    before = serving_pid(good)
    iso = {"namespaces": {"credential": True},
           "uidmap": [{"container": 0, "host": 1000, "size": 1}]}
    cfg = ih.app_config(good, iso, wh.app_binary(w.dir, "inspect"))
    detail = refused_at_start(w, cfg)
    assert "uid %d is not mapped" % NOBODY in detail and "uidmap" in detail, detail
    assert serving_pid(good) == before


# --------------------------------------------------------------------------
# rootfs and automount

@pytest.mark.parametrize("ns", [ROOT_NS, ROOT_NS_USER], ids=["root", "credential"])
def test_rootfs_with_every_automount(warren, ns):
    """rootfs, automount defaults: the app's / is the rootfs with /proc, a
    tmpfs /tmp and its libraries bound read-only; the host is invisible, and
    nothing of it is mounted in the host's namespace."""
    w = warren
    root = ih.make_rootfs(w)
    secret = os.path.join(w.dir, "host-secret")
    open(secret, "w").close()
    port, _ = ih.start_inspect(w, {"namespaces": ns, "rootfs": root})
    rep = ih.report(port)
    assert ih.exists(port, "/inspect") is True
    assert ih.exists(port, secret) is False
    assert ih.exists(port, w.dir) is False
    assert ih.exists(port, "/proc/self") is True
    assert rep["mountinfo"] is not None
    proc = ih.mount_at(rep, "/proc")
    assert proc and proc["fstype"] == "proc", rep["mountinfo"]
    assert {"nosuid", "nodev", "noexec"} <= set(proc["opts"].split(",")), proc
    tmp = ih.mount_at(rep, "/tmp")
    assert tmp and tmp["fstype"] == "tmpfs", rep["mountinfo"]
    assert {"nosuid", "nodev", "noexec"} <= set(tmp["opts"].split(",")), tmp
    # the language deps: read-only binds of the libraries the app links
    libs = [m for m in ih.parse_mountinfo(rep["mountinfo"])
            if m["point"] not in ("/", "/proc", "/tmp")]
    assert libs, rep["mountinfo"]
    assert all("ro" in m["opts"].split(",") for m in libs), libs
    for lib in ih.elf_deps(os.path.join(wh.APPS_DIR, "inspect")):
        assert ih.exists(port, lib) or ih.exists(port, os.path.realpath(lib)), lib
    # the old root is gone: only the rootfs's mounts are left, all private
    assert all(not m["point"].startswith(w.dir) for m in ih.parse_mountinfo(rep["mountinfo"]))
    assert ih.shared_mounts(rep) == [], rep["mountinfo"]
    # and the host's namespace holds none of them
    assert ih.mounts_under([w.dir]) == []


def test_rootfs_without_procfs(warren):
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root,
                                   "automount": {"procfs": False}})
    rep = ih.report(port)
    assert ih.exists(port, "/inspect") is True
    assert ih.exists(port, "/proc/self") is False
    assert rep["mountinfo"] is None and rep["cgroup"] is None
    assert rep["ns"] == {n: None for n in ih.NS_KEYS}


def test_procfs_without_a_pid_namespace_is_warned_about(warren):
    """Valid (Unit accepts it), but /proc then shows host processes whose
    /proc/PID/root leads out of the rootfs: the log says so."""
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": {"mount": True}, "rootfs": root})
    assert ih.exists(port, "/proc/self") is True
    assert '"procfs" without a "pid" namespace' in w.log()


def test_procfs_with_a_pid_namespace_is_not_warned_about(warren):
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root})
    assert ih.exists(port, "/proc/self") is True
    assert '"procfs" without a "pid" namespace' not in w.log()


def test_rootfs_without_tmpfs(warren):
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root,
                                   "automount": {"tmpfs": False}})
    rep = ih.report(port)
    assert not ih.tmp_is_tmpfs(rep), rep["mountinfo"]
    assert ih.mount_at(rep, "/proc") is not None


def test_tmpfs_size(warren):
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root,
                                   "tmpfs_size": 1 << 20})
    tmp = ih.mount_at(ih.report(port), "/tmp")
    assert tmp and tmp["fstype"] == "tmpfs"
    assert "size=1024k" in tmp["super"].split(","), tmp


def test_rootfs_without_language_deps(warren):
    """language_deps off: nothing but /, /proc and /tmp is mounted; the app
    runs from the libraries copied into its rootfs."""
    w = warren
    root = ih.make_rootfs(w, libs=True)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS, "rootfs": root,
                                   "automount": {"language_deps": False}})
    rep = ih.report(port)
    points = sorted(m["point"] for m in ih.parse_mountinfo(rep["mountinfo"]))
    assert points == ["/", "/proc", "/tmp"], rep["mountinfo"]


def test_rootfs_without_language_deps_and_libraries_fails(warren):
    """The same without the copied libraries: the app cannot start, and the
    PUT says so."""
    w = warren
    root = ih.make_rootfs(w)
    port = wh.free_port()
    cfg = ih.app_config(port, {"namespaces": ROOT_NS, "rootfs": root,
                               "automount": {"language_deps": False}}, ih.INSPECT_IN_ROOT)
    detail = refused_at_start(w, cfg)
    assert detail.startswith(ih.START_FAILED % ih.APP), detail


def test_bind_mounts(warren):
    """"mounts": read-only by default, read-write when asked."""
    w = warren
    root = ih.make_rootfs(w)
    src = os.path.join(w.dir, "data")
    os.mkdir(src)
    open(os.path.join(src, "hello.txt"), "w").close()
    iso = {"namespaces": ROOT_NS, "rootfs": root,
           "mounts": [{"source": src, "destination": "/srv/ro"},
                      {"source": src, "destination": "/srv/rw", "read_only": False}]}
    port, _ = ih.start_inspect(w, iso)
    rep = ih.report(port)
    assert ih.exists(port, "/srv/ro/hello.txt") is True
    ro, rw = ih.mount_at(rep, "/srv/ro"), ih.mount_at(rep, "/srv/rw")
    assert ro and "ro" in ro["opts"].split(","), rep["mountinfo"]
    assert rw and "rw" in rw["opts"].split(","), rep["mountinfo"]
    assert ih.mounts_under([w.dir]) == []


def test_chroot_without_mount_namespace(warren):
    """rootfs with no mount namespace: chroot; main mounts /proc and /tmp in
    the host's namespace and unmounts them when the generation is gone."""
    w = warren
    root = ih.make_rootfs(w)
    before = ih.mounts_under([w.dir])
    port, cfg = ih.start_inspect(w, {"rootfs": root})
    rep = ih.report(port)
    assert ih.exists(port, "/inspect") is True
    assert ih.exists(port, w.dir) is False
    assert ih.exists(port, "/proc/self") is True
    assert rep["ns"]["mnt"] == host_ns(w)["mnt"]
    assert ih.mounts_under([root]) != []          # made by main, on the host
    s, j = w.put("/config", {"listeners": {}, "applications": {}})
    assert (s, j) == (200, wh.SUCCESS)
    assert wh.wait_for(lambda: ih.mounts_under([w.dir]) == before, 5.0), \
        ih.mounts_under([w.dir])


def test_python_twin_in_a_rootfs(warren_factory):
    """The WSGI twin, with credential + mount + pid namespaces and a rootfs:
    the interpreter's library, stdlib and site dirs are the language deps."""
    with ih.python_in_rootfs(warren_factory, ROOT_NS_USER,
                             environment={"MARKER": "py"}) as (w, port):
        w.baseline_all()
        rep = ih.report(port)
        host = host_ns(w)
        for n in ("user", "pid", "mnt"):
            assert rep["ns"][n] != host[n], (n, rep["ns"])
        assert (rep["uid"], rep["gid"]) == (NOBODY, NOGROUP)
        assert rep["env_marker"] == "py"
        assert ih.tmp_is_tmpfs(rep)
        assert ih.exists(port, "/app/%s.py" % ih.WSGI_MODULE) is True
        assert ih.exists(port, w.dir) is False
        assert rep["seccomp"] == 2 and rep["no_new_privs"] == 1
        assert rep["io_uring"] == os.strerror(1), rep["io_uring"]       # EPERM
        assert rep["securebits"] & 1, rep["securebits"]                 # NOROOT
        assert ih.mounts_under([w.dir]) == []


def test_python_twin_agrees_with_the_c_app(warren_factory):
    """Without isolation both apps report the same host view."""
    rt = wh.runtimes_modulesdir()
    try:
        w = warren_factory(extra_args=["--modulesdir", rt])
        appdir = ih.make_wsgi_dir(w.dir, "pyapp")
        cport, pport = wh.free_port(), wh.free_port()
        cfg = ih.app_config(cport, None, wh.app_binary(w.dir, "inspect"))
        cfg["listeners"]["127.0.0.1:%d" % pport] = {"pass": "applications/py"}
        cfg["applications"]["py"] = {"type": "python", "path": appdir,
                                     "module": ih.WSGI_MODULE, "processes": 1}
        ih.put(w, cfg)
        c, p = ih.report(cport), ih.report(pport)
        same = ("uid", "gid", "euid", "egid", "groups", "ns", "hostname", "cap_eff",
                "cap_prm", "cap_bnd", "cap_amb", "no_new_privs", "seccomp",
                "af_alg", "keyctl", "userfaultfd", "env_marker", "af_alg_pair",
                "io_uring", "process_vm_readv", "x32", "securebits")
        assert {k: c[k] for k in same} == {k: p[k] for k in same}
        assert sorted(c) == sorted(p)
        assert ih.exists(pport, "/proc/self") and not ih.exists(pport, "/nonexistent")
    finally:
        shutil.rmtree(rt, ignore_errors=True)


# --------------------------------------------------------------------------
# cgroups

def _cgroup_or_skip():
    mnt = ih.cgroup2_mount()
    if mnt is None:
        pytest.skip("no cgroup v2 hierarchy is mounted here")
    return mnt


def test_cgroup_relative_path(warren):
    """A relative path is under warrend's own cgroup: created for the
    generation, the workers in it, removed when the app is gone."""
    w = warren
    mnt = _cgroup_or_skip()
    own = ih.cgroup2_of(w.main_pid)
    top = "warren-it-%s" % uuid.uuid4().hex[:8]
    rel = top + "/app"
    want = (own.rstrip("/") + "/" + rel)
    path = mnt + want
    try:
        port, _ = ih.start_inspect(w, {"cgroup": {"path": rel}})
        rep = ih.report(port)
        pid = ih.worker_host_pid(w, rep)
        assert ih.cgroup2_of(pid) == want
        assert "0::%s\n" % want in rep["cgroup"]
        assert os.path.isdir(path)
        assert str(pid) in ih.read(path + "/cgroup.procs").split()
        s, j = w.put("/config", {"listeners": {}, "applications": {}})
        assert (s, j) == (200, wh.SUCCESS)
        assert wh.wait_for(lambda: not os.path.exists(path), 5.0), path
    finally:
        for d in (path, mnt + own.rstrip("/") + "/" + top):
            if os.path.isdir(d):
                os.rmdir(d)


def test_cgroup_absolute_path_and_namespace(warren):
    w = warren
    mnt = _cgroup_or_skip()
    path = "/warren-it-abs-%s" % uuid.uuid4().hex[:8]
    try:
        port, _ = ih.start_inspect(w, {"cgroup": {"path": path},
                                       "namespaces": {"cgroup": True}})
        rep = ih.report(port)
        pid = ih.worker_host_pid(w, rep)
        assert ih.cgroup2_of(pid) == path
        # inside its own cgroup namespace the app's cgroup is its root
        assert "0::/\n" in rep["cgroup"], rep["cgroup"]
        assert rep["ns"]["cgroup"] != host_ns(w)["cgroup"]
    finally:
        ih.put(w, {"listeners": {}, "applications": {}})
        wh.wait_for(lambda: not os.path.isdir(mnt + path), 5.0)
        if os.path.isdir(mnt + path):
            os.rmdir(mnt + path)


def test_cgroup_memory_max(warren):
    """Where the cgroup v2 memory controller exists, a memory.max written
    on the app's cgroup charges and limits the app's workers."""
    w = warren
    mnt = _cgroup_or_skip()
    own = ih.cgroup2_of(w.main_pid).rstrip("/")
    ctrl = ih.read(mnt + own + "/cgroup.controllers").split()
    if "memory" not in ctrl:
        pytest.skip("the cgroup v2 hierarchy at %s has no memory controller here "
                    "(controllers of %s: %s): memory.max cannot be tested"
                    % (mnt, own or "/", " ".join(ctrl) or "none"))
    top = "warren-it-mem-%s" % uuid.uuid4().hex[:8]
    enabled = "memory" in ih.read(mnt + own + "/cgroup.subtree_control").split()
    try:
        try:
            with open(mnt + own + "/cgroup.subtree_control", "w") as f:
                f.write("+memory")
        except OSError as e:
            pytest.skip("cannot enable the memory controller below %s: %s"
                        % (own or "/", os.strerror(e.errno)))
        os.mkdir(mnt + own + "/" + top)
        with open(mnt + own + "/" + top + "/cgroup.subtree_control", "w") as f:
            f.write("+memory")
        port, _ = ih.start_inspect(w, {"cgroup": {"path": top + "/app"}})
        leaf = mnt + own + "/" + top + "/app"
        with open(leaf + "/memory.max", "w") as f:
            f.write(str(64 << 20))
        rep = ih.report(port)
        assert ih.cgroup2_of(ih.worker_host_pid(w, rep)) == own + "/" + top + "/app"
        assert ih.read(leaf + "/memory.max").strip() == str(64 << 20)
        assert int(ih.read(leaf + "/memory.current")) > 0
    finally:
        ih.put(w, {"listeners": {}, "applications": {}})
        for d in (mnt + own + "/" + top + "/app", mnt + own + "/" + top):
            wh.wait_for(lambda: not os.path.isdir(d) or not
                        ih.read(d + "/cgroup.procs").strip(), 5.0)
            if os.path.isdir(d):
                os.rmdir(d)
        if not enabled:
            try:            # as it was; in use by another cgroup: leave it
                with open(mnt + own + "/cgroup.subtree_control", "w") as f:
                    f.write("-memory")
            except OSError:
                pass


# --------------------------------------------------------------------------
# rlimits, capabilities, seccomp, no_new_privs

def test_rlimits(warren):
    w = warren
    # "as" above any address space in use: the suite's warrend is built with
    # ASan, whose prototype (a fork of it) already maps ~20 TiB of shadow, so
    # a lower limit fails its next mmap (it did at 8 GiB once libssl came in).
    want = {"nofile": 321, "nproc": 4321, "as": 1 << 46, "core": 0, "cpu": 3600,
            "fsize": 1 << 30}
    port, _ = ih.start_inspect(w, {"rlimits": want})
    rep = ih.report(port)
    assert rep["rlimits"] == {k: [v, v] for k, v in want.items()}
    pid = ih.worker_host_pid(w, rep)
    limits = ih.read("/proc/%d/limits" % pid)
    assert "Max open files            321                  321" in limits, limits


def test_root_app_keeps_no_capability(warren):
    """An isolated app run as root has every capability dropped, from every
    set, unless it lists some."""
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}}, user="root")
    rep = ih.report(port)
    assert rep["uid"] == 0
    for k in ("cap_eff", "cap_prm", "cap_bnd", "cap_amb"):
        assert rep[k] == ZERO_CAPS, (k, rep[k])
    pid = ih.worker_host_pid(w, rep)
    st = wh.proc_status(pid)
    assert st["CapEff"] == st["CapBnd"] == ZERO_CAPS


def test_listed_capabilities_are_kept(warren):
    w = warren
    want = "%016x" % (1 << CAP_NET_BIND_SERVICE | 1 << CAP_KILL)
    port, _ = ih.start_inspect(w, {"capabilities": ["net_bind_service", "kill"]},
                               user="root")
    rep = ih.report(port)
    for k in ("cap_eff", "cap_prm", "cap_bnd", "cap_amb"):
        assert rep[k] == want, (k, rep[k])


def test_capabilities_for_an_unprivileged_app(warren):
    """A listed capability reaches an app run as nobody (ambient set)."""
    w = warren
    want = "%016x" % (1 << CAP_NET_BIND_SERVICE)
    port, _ = ih.start_inspect(w, {"capabilities": ["net_bind_service"]})
    rep = ih.report(port)
    assert rep["uid"] == NOBODY
    assert rep["cap_eff"] == rep["cap_amb"] == want


def test_seccomp_default_filter(warren):
    """Isolated apps get the default filter: AF_ALG sockets, keyctl and
    userfaultfd are denied."""
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}})
    rep = ih.report(port)
    assert rep["seccomp"] == 2
    assert rep["af_alg"] == os.strerror(97)       # EAFNOSUPPORT
    assert rep["keyctl"] == os.strerror(1)        # EPERM
    assert rep["userfaultfd"] == os.strerror(1)
    pid = ih.worker_host_pid(w, rep)
    assert wh.proc_status(pid)["Seccomp"] == "2"


def test_seccomp_off(warren):
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}, "seccomp": False})
    rep = ih.report(port)
    assert rep["seccomp"] == 0
    assert rep["keyctl"] == "ok" and rep["userfaultfd"] == "ok"
    assert rep["af_alg"] == host_af_alg()


def test_no_new_privs(warren):
    w = warren
    port, _ = ih.start_inspect(w, {"namespaces": {"pid": True}})
    assert ih.report(port)["no_new_privs"] == 1
    ih.start_inspect(w, {"namespaces": {"pid": True}, "new_privs": True}, port=port)
    rep = ih.report(port)
    assert rep["no_new_privs"] == 0
    assert wh.proc_status(ih.worker_host_pid(w, rep))["NoNewPrivs"] == "0"


# --------------------------------------------------------------------------
# the symlink attack

ATTACKS = [
    ("proc", {}),
    ("tmp", {}),
    ("srv", {"mounts": "srv"}),
    # where the language deps are bound: resolved as if the rootfs were "/",
    # so a link out of it points at a missing path inside it (ENOENT)
    ("usr", {}),
]


@pytest.mark.parametrize("mode", ["namespace", "chroot"])
@pytest.mark.parametrize("target,extra", ATTACKS, ids=[a[0] for a in ATTACKS])
@pytest.mark.parametrize("link", ["absolute", "relative"])
def test_symlink_in_rootfs_never_mounts_on_the_host(warren, mode, target, extra, link):
    """A rootfs whose proc, tmp (or a "mounts" destination's parent) is a
    symlink to a host directory: the PUT fails with the step, the path and
    errno; the running app keeps serving; nothing is mounted anywhere on the
    host and the host directory is untouched."""
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    hostdir = os.path.join(w.dir, "host-" + target)
    os.mkdir(hostdir)
    open(os.path.join(hostdir, "keep"), "w").close()
    root = ih.make_rootfs(w)
    os.symlink(hostdir if link == "absolute" else "../host-" + target,
               os.path.join(root, target))
    iso = {"rootfs": root}
    if mode == "namespace":
        iso["namespaces"] = ROOT_NS
    if extra.get("mounts"):
        src = os.path.join(w.dir, "data")
        os.mkdir(src)
        iso["mounts"] = [{"source": src, "destination": "/srv/data"}]
    host_before = ih.mounts_under([w.dir])
    all_before = ih.mount_points()
    cfg = ih.app_config(good, iso, ih.INSPECT_IN_ROOT)
    detail = refused_at_start(w, cfg)
    obj, err = ih.failed_step(detail)
    assert target in obj, detail
    assert serving_pid(good) == serving
    assert ih.mounts_under([w.dir]) == host_before == []
    # nothing new on the host's own /proc, /tmp or / either (other tests on
    # this machine may mount elsewhere meanwhile: only these are looked at)
    new = collections.Counter(ih.mount_points()) - collections.Counter(all_before)
    assert not [p for p in new if p in ("/", "/proc", "/tmp") or p.startswith(w.dir)], new
    assert not os.path.ismount(hostdir)
    assert os.listdir(hostdir) == ["keep"]
    assert os.path.islink(os.path.join(root, target))


# --------------------------------------------------------------------------
# impossible combinations: 400 at validation

P = "/applications/app/isolation"
INVALID = [
    ("rootfs-credential-without-mount",
     {"namespaces": {"credential": True}, "rootfs": "/srv/root"}, P + "/rootfs"),
    ("rootfs-slash", {"rootfs": "/"}, P + "/rootfs"),
    ("rootfs-slashes", {"rootfs": "//./"}, P + "/rootfs"),
    ("rootfs-relative", {"rootfs": "srv/root"}, P + "/rootfs"),
    ("rootfs-dotdot", {"rootfs": "/srv/../root"}, P + "/rootfs"),
    ("mounts-without-rootfs",
     {"mounts": [{"source": "/srv", "destination": "/srv"}]}, P + "/mounts"),
    ("mount-source-relative",
     {"rootfs": "/srv/root", "mounts": [{"source": "srv", "destination": "/srv"}]},
     P + "/mounts/0/source"),
    ("mount-destination-relative",
     {"rootfs": "/srv/root", "mounts": [{"source": "/srv", "destination": "srv"}]},
     P + "/mounts/0/destination"),
    ("hostname-without-uname", {"hostname": "box"}, P + "/hostname"),
    ("capability-unknown", {"capabilities": ["net_bind_servic"]}, P + "/capabilities/0"),
    ("rlimit-unknown", {"rlimits": {"stack": 1}}, P + "/rlimits/stack"),
    ("rlimit-negative", {"rlimits": {"nofile": -1}}, P + "/rlimits/nofile"),
    ("tmpfs-size-negative", {"rootfs": "/srv/root", "tmpfs_size": -1}, P + "/tmpfs_size"),
    ("tmpfs-size-without-rootfs", {"tmpfs_size": 1 << 20}, P + "/tmpfs_size"),
    ("tmpfs-size-zero", {"rootfs": "/srv/root", "tmpfs_size": 0}, P + "/tmpfs_size"),
    ("seccomp-with-new-privs", {"new_privs": True, "seccomp": True}, P + "/seccomp"),
    ("seccomp-unknown-profile", {"seccomp": "strict"}, P + "/seccomp"),
    ("mount-destination-root",
     {"rootfs": "/srv/root", "mounts": [{"source": "/srv", "destination": "/"}]},
     P + "/mounts/0/destination"),
    ("mount-destination-dot-root",
     {"rootfs": "/srv/root", "mounts": [{"source": "/srv", "destination": "//./."}]},
     P + "/mounts/0/destination"),
    ("mount-destination-under-procfs",
     {"rootfs": "/srv/root", "mounts": [{"source": "/srv", "destination": "/x"},
                                        {"source": "/srv", "destination": "/./proc/sys"}]},
     P + "/mounts/1/destination"),
    ("mount-destination-procfs",
     {"rootfs": "/srv/root", "automount": {"tmpfs": False},
      "mounts": [{"source": "/srv", "destination": "/proc/"}]},
     P + "/mounts/0/destination"),
    ("mount-destination-tmpfs",
     {"rootfs": "/srv/root", "mounts": [{"source": "/srv", "destination": "//tmp"}]},
     P + "/mounts/0/destination"),
    ("chroot-with-sys-chroot",
     {"rootfs": "/srv/root", "capabilities": ["kill", "CAP_SYS_CHROOT"]},
     P + "/capabilities/1"),
    ("hostname-too-long", {"namespaces": {"uname": True}, "hostname": "h" * 65},
     P + "/hostname"),
    ("cgroup-path-dotdot", {"cgroup": {"path": "../escape"}}, P + "/cgroup/path"),
    ("uidmap-size-zero", {"namespaces": {"credential": True},
                          "uidmap": [{"container": 0, "host": 0, "size": 0}]},
     P + "/uidmap/0/size"),
]


@pytest.mark.parametrize("iso,path", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_impossible_combination_is_invalid(vwarren, iso, path):
    w = vwarren
    before = w.config_bytes()
    cfg = wh.deep(w.base)
    cfg["applications"]["app"]["isolation"] = iso
    s, j = w.put("/config", cfg)
    assert s == 400, (s, j)
    assert j.get("error") == "Invalid configuration.", j
    assert isinstance(j.get("detail"), str) and j["detail"], j
    assert j.get("location") == {"path": path}, j
    assert w.config_bytes() == before


def test_http_app_in_its_own_network_namespace_is_invalid(vwarren):
    """The router reaches an http app through abstract unix sockets, which
    a network namespace of its own would hide."""
    w = vwarren
    before = w.config_bytes()
    cfg = wh.deep(w.base)
    cfg["applications"]["app"]["protocol"] = "http"
    cfg["applications"]["app"]["isolation"] = {"namespaces": {"network": True}}
    s, j = w.put("/config", cfg)
    assert s == 400, (s, j)
    assert j.get("location") == {"path": "/applications/app/protocol"}, j
    assert "network" in j.get("detail", ""), j
    assert w.config_bytes() == before


def test_nul_in_a_path_is_refused(vwarren):
    """A NUL inside a path never reaches the sandbox: the JSON parser
    already refuses \\u0000 in a string (400, "Invalid JSON.")."""
    w = vwarren
    before = w.config_bytes()
    cfg = wh.deep(w.base)
    cfg["applications"]["app"]["isolation"] = {"namespaces": ROOT_NS,
                                               "rootfs": "/srv/ro\u0000ot"}
    s, j = w.put("/config", cfg)
    assert s == 400, (s, j)
    assert j.get("error") in ("Invalid JSON.", "Invalid configuration."), j
    assert w.config_bytes() == before


# --------------------------------------------------------------------------
# a sandbox step failing at run time: 500, step/path/errno, config kept

def test_missing_rootfs_fails_the_put(warren):
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    missing = os.path.join(w.dir, "no-such-root")
    cfg = ih.app_config(good, {"namespaces": ROOT_NS, "rootfs": missing},
                        ih.INSPECT_IN_ROOT)
    detail = refused_at_start(w, cfg)
    obj, err = ih.failed_step(detail)
    assert missing in obj and err == "No such file or directory", detail
    assert serving_pid(good) == serving


def test_missing_executable_in_rootfs_fails_the_put(warren):
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    root = ih.make_rootfs(w)
    cfg = ih.app_config(good, {"namespaces": ROOT_NS, "rootfs": root}, "/no-such-app")
    detail = refused_at_start(w, cfg)
    assert "/no-such-app" in detail and "No such file or directory" in detail, detail
    assert serving_pid(good) == serving
    assert ih.mounts_under([w.dir]) == []


def test_cgroup_that_cannot_be_created_fails_the_put(warren):
    """cgroup.procs is a file: no cgroup can be created below it."""
    w = warren
    _cgroup_or_skip()
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    cfg = ih.app_config(good, {"cgroup": {"path": "cgroup.procs/app"}},
                        wh.app_binary(w.dir, "inspect"))
    detail = refused_at_start(w, cfg)
    obj, err = ih.failed_step(detail)
    assert "cgroup.procs" in obj, detail
    assert serving_pid(good) == serving


def test_mount_source_missing_fails_the_put(warren):
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    root = ih.make_rootfs(w)
    missing = os.path.join(w.dir, "no-such-source")
    cfg = ih.app_config(good, {"namespaces": ROOT_NS, "rootfs": root,
                               "mounts": [{"source": missing, "destination": "/data"}]},
                        ih.INSPECT_IN_ROOT)
    detail = refused_at_start(w, cfg)
    obj, err = ih.failed_step(detail)
    assert missing in obj and err == "No such file or directory", detail
    assert serving_pid(good) == serving
    assert ih.mounts_under([w.dir]) == []


def test_rootfs_resolving_to_slash_fails_the_put(warren):
    """A rootfs that passes validation but is "/" after all (a symlink to
    it) is refused when the generation starts."""
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    link = os.path.join(w.dir, "slash")
    os.symlink("/", link)
    cfg = ih.app_config(good, {"namespaces": ROOT_NS, "rootfs": link}, ih.INSPECT_IN_ROOT)
    obj, err = ih.failed_step(refused_at_start(w, cfg))
    assert obj == link and err == "Invalid argument", (obj, err)
    assert serving_pid(good) == serving


def test_procfs_in_a_user_namespace_needs_a_pid_namespace(warren):
    """credential + mount without pid: the kernel refuses procfs (the pid
    namespace is not the user namespace's); the PUT says which mount."""
    w = warren
    good, _ = ih.start_inspect(w)
    serving = serving_pid(good)
    root = ih.make_rootfs(w)
    cfg = ih.app_config(good, {"namespaces": {"credential": True, "mount": True},
                               "rootfs": root}, ih.INSPECT_IN_ROOT)
    obj, err = ih.failed_step(refused_at_start(w, cfg))
    assert obj == "proc, %s/proc" % root and err == "Operation not permitted", (obj, err)
    assert serving_pid(good) == serving
    assert ih.mounts_under([w.dir]) == []


def test_namespaced_generation_leaves_nothing(warren):
    """Deleting a pid + mount namespaced app ends its prototype (the
    namespace's init) and so every process in the namespace; no mount of
    it is left anywhere we can see."""
    w = warren
    root = ih.make_rootfs(w)
    port, _ = ih.start_inspect(w, {"namespaces": ROOT_NS_USER, "rootfs": root},
                               processes=3)
    rep = ih.report(port)
    protos, workers = w.app_processes()
    assert len(protos) == 1 and len(workers) == 3, w.children()
    ns = ih.ns_of(next(iter(workers)))
    assert ns["pid"] == rep["ns"]["pid"]
    s, j = w.put("/config", {"listeners": {}, "applications": {}})
    assert (s, j) == (200, wh.SUCCESS)
    assert wh.wait_for(lambda: not any(wh.proc_alive(p) for p in protos | workers), 10.0), \
        w.children()
    # no process of ours is left in that pid namespace
    left = []
    for p, st in wh.descendants(os.getpid()).items():
        if st[0] in ("Z", "X"):
            continue        # dead, adopted by the test (a subreaper), not reaped yet
        try:
            if os.stat("/proc/%d/ns/pid" % p).st_ino == ns["pid"]:
                left.append(p)
        except OSError:
            pass
    assert left == []
    assert ih.mounts_under([w.dir]) == []

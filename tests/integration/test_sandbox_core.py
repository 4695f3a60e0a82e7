"""The sandbox core (src/sandbox): an external app in each namespace, in an
empty rootfs made runnable by language_deps alone, caps/no_new_privs/seccomp
seen from the host, a symlinked rootfs/proc refused with nothing mounted,
a chroot-only rootfs whose host mounts go away with the generation, a
Python app in a rootfs. The broad suite is test_isolation*.py."""

import os
import shutil

import http_helpers as hh
import warren_helpers as wh

HELLO = os.path.join(wh.APPS_DIR, "hello")
NS_OF = {"credential": "user", "pid": "pid", "mount": "mnt", "network": "net",
         "uname": "uts", "ipc": "ipc", "cgroup": "cgroup"}


def cfg(port, iso, exe="/hello", name="s", **app):
    a = {"type": "external", "executable": exe, "processes": 1, "isolation": iso}
    a.update(app)
    return {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/" + name}},
            "applications": {name: a}}


def rootfs(w, name="root"):
    """An empty dir (nobody can traverse it) with only the app binary."""
    d = os.path.join(w.dir, name)
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    shutil.copy(HELLO, os.path.join(d, "hello"))
    os.chmod(os.path.join(d, "hello"), 0o755)
    return d


def prototypes(w, name="s"):
    title = "warren: %s prototype" % name
    return sorted(p for p, t in w.children().items() if t == title)


def worker(w, name="s"):
    protos = prototypes(w, name)
    for p, st in wh.descendants(w.main_pid).items():
        if st[1] in protos and st[0] not in ("Z", "X") and not wh.is_zygote(p):
            return p
    return None


def up(w, port, name="s"):
    r = hh.get(port)
    assert r.status == 200, r
    assert wh.wait_for(lambda: worker(w, name) is not None)
    w.baseline_all()
    return worker(w, name)


def ns(pid, kind):
    return os.readlink("/proc/%d/ns/%s" % (pid, kind))


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return f.read()


def put_ok(w, c):
    s, j = w.put("/config", c)
    assert (s, j) == (200, wh.SUCCESS), j


def test_each_namespace_alone(warren):
    w = warren
    port = wh.free_port()
    for key, kind in NS_OF.items():
        put_ok(w, cfg(port, {"namespaces": {key: True}}, exe=wh.app_binary(w.dir)))
        pid = up(w, port)
        assert ns(pid, kind) != ns(os.getpid(), kind), key
        others = [k for k in NS_OF.values() if k != kind]
        for o in others:
            assert ns(pid, o) == ns(os.getpid(), o), (key, o)


def test_empty_rootfs_runs_with_language_deps(warren):
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    iso = {"namespaces": {"credential": True, "mount": True, "pid": True, "uname": True,
                          "ipc": True},
           "rootfs": root, "hostname": "sandboxed"}
    put_ok(w, cfg(port, iso))
    pid = up(w, port)
    assert hh.get(port).body == b"Hello, world\n"
    with open("/proc/%d/mountinfo" % pid) as f:
        mi = f.read()
    # its "/" is the rootfs; proc and tmp mounted as the contract says
    lines = [l.split() for l in mi.splitlines()]
    by_mp = {l[4]: l for l in lines}
    assert by_mp["/"][3] == "/" or root in by_mp["/"][3]
    proc = " ".join(by_mp["/proc"])
    assert "nosuid" in proc and "nodev" in proc and "noexec" in proc and " - proc " in proc
    tmp = " ".join(by_mp["/tmp"])
    assert "nosuid" in tmp and "nodev" in tmp and "noexec" in tmp and " - tmpfs " in tmp
    libs = [l for l in lines if l[4].startswith("/usr/lib")]
    assert libs and all("ro" in l[5].split(",") for l in libs)
    # nothing of it in the host's namespace
    assert root not in host_mounts()
    # the app's id is the same inside as outside (default map), pid ns: not 1
    st = wh.proc_status(pid)
    assert int(st["Uid"].split()[0]) == wh.NOBODY_UID
    assert st["NSpid"].split()[-1] != st["NSpid"].split()[0]
    assert int(st["NoNewPrivs"]) == 1 and int(st["Seccomp"]) == 2
    assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0


def test_without_language_deps_the_app_cannot_start(warren):
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    iso = {"namespaces": {"mount": True}, "rootfs": root,
           "automount": {"language_deps": False}}
    s, j = w.put("/config", cfg(port, iso))
    assert s == 500 and "could not start" in j["detail"], j
    assert w.config() == {}


def test_symlinked_proc_fails_cleanly(warren):
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    target = os.path.join(w.dir, "host-dir")
    os.mkdir(target)
    os.symlink(target, os.path.join(root, "proc"))
    before = host_mounts()
    for mount_ns in (True, False):
        iso = {"namespaces": {"mount": mount_ns}, "rootfs": root}
        s, j = w.put("/config", cfg(port, iso))
        assert s == 500, j
        assert "openat2(%s/proc) failed: Too many levels of symbolic links" % root \
            in j["detail"], j
        assert host_mounts() == before
        assert os.listdir(target) == []
    assert w.config() == {}


def test_chroot_rootfs_host_mounts_go_with_the_generation(warren):
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    put_ok(w, cfg(port, {"rootfs": root}))
    pid = up(w, port)
    assert root + "/proc" in host_mounts() and root + "/tmp" in host_mounts()
    assert os.readlink("/proc/%d/root" % pid) == root
    s, j = w.put("/config", {})
    assert s == 200, j
    assert wh.wait_for(lambda: root not in host_mounts()), host_mounts()


def test_caps_kept_when_listed_and_rlimits(warren):
    w = warren
    port = wh.free_port()
    iso = {"namespaces": {"mount": True}, "capabilities": ["net_bind_service"],
           "rlimits": {"nofile": 77, "core": 0}}
    put_ok(w, cfg(port, iso, exe=wh.app_binary(w.dir)))
    pid = up(w, port)
    st = wh.proc_status(pid)
    bit = 1 << 10                          # CAP_NET_BIND_SERVICE
    assert int(st["CapEff"], 16) == bit and int(st["CapAmb"], 16) == bit
    assert int(st["CapBnd"], 16) == bit
    with open("/proc/%d/limits" % pid) as f:
        lim = f.read()
    assert [l for l in lim.splitlines() if l.startswith("Max open files")][0].split()[3:5] \
        == ["77", "77"]


def test_new_privs_turns_seccomp_and_nnp_off(warren):
    w = warren
    port = wh.free_port()
    put_ok(w, cfg(port, {"new_privs": True}, exe=wh.app_binary(w.dir)))
    st = wh.proc_status(up(w, port))
    assert int(st["NoNewPrivs"]) == 0 and int(st["Seccomp"]) == 0


def test_cgroup_placement(warren):
    w = warren
    port = wh.free_port()
    with open("/proc/self/mountinfo") as f:
        mnt = [l.split()[4] for l in f if " - cgroup2 " in l][0]
    with open("/proc/%d/cgroup" % w.main_pid) as f:
        mine = [l.strip()[3:] for l in f if l.startswith("0::")][0]
    name = "warren-it-%d" % os.getpid()
    put_ok(w, cfg(port, {"cgroup": {"path": name}}, exe=wh.app_binary(w.dir)))
    pid = up(w, port)
    with open("/proc/%d/cgroup" % pid) as f:
        assert "0::%s/%s\n" % (mine.rstrip("/"), name) in f.read()
    d = mnt + mine.rstrip("/") + "/" + name
    assert os.path.isdir(d)
    s, j = w.put("/config", {})
    assert s == 200, j
    assert wh.wait_for(lambda: not os.path.exists(d))


def test_python_app_in_rootfs(warren):
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    os.makedirs(os.path.join(root, "app"))
    with open(os.path.join(root, "app", "wsgi.py"), "w") as f:
        f.write("import os\n"
                "def application(env, start):\n"
                "    start('200 OK', [('Content-Type', 'text/plain')])\n"
                "    return [repr(sorted(os.listdir('/'))).encode()]\n")
    iso = {"namespaces": {"credential": True, "mount": True, "pid": True}, "rootfs": root}
    c = {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/s"}},
         "applications": {"s": {"type": "python", "path": "/app", "module": "wsgi",
                                "processes": 1, "isolation": iso}}}
    put_ok(w, c)
    r = hh.get(port)
    assert r.status == 200, r
    names = eval(r.body.decode())
    assert "app" in names and "proc" in names and "tmp" in names and "home" not in names
    w.baseline_all()


def test_reload_storm_small(warren):
    """automount.tmpfs toggled: each round converges (the app's /tmp mount
    appears/disappears), the router's fds stay bounded, no host mount."""
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    before = host_mounts()
    router = w.pid("router")
    fds0 = None
    for i in range(20):
        tmpfs = i % 2 == 0
        iso = {"namespaces": {"credential": True, "mount": True, "pid": True},
               "rootfs": root, "automount": {"tmpfs": tmpfs}}
        put_ok(w, cfg(port, iso))
        assert hh.get(port).status == 200

        def converged():
            p = worker(w)
            if p is None or len(prototypes(w)) != 1:
                return False
            try:
                with open("/proc/%d/mountinfo" % p) as f:
                    return (" /tmp " in f.read()) == tmpfs
            except OSError:
                return False
        assert wh.wait_for(converged), i
        if fds0 is None:
            fds0 = len(os.listdir("/proc/%d/fd" % router))
    assert abs(len(os.listdir("/proc/%d/fd" % router)) - fds0) <= 2
    assert host_mounts() == before
    w.baseline_all()


def test_chroot_rootfs_reloads_leave_no_host_mount(warren):
    """Generations of a chroot-only app share its rootfs: a new one adopts
    the host mounts the old one made (same options) instead of stacking
    on them, and the last one gone unmounts them."""
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    before = host_mounts()
    for i in range(6):
        iso = {"rootfs": root, "automount": {"tmpfs": i % 3 != 2}}
        put_ok(w, cfg(port, iso, environment={"ROUND": str(i)}))
        assert hh.get(port).status == 200
        mounts = [l.split()[4] for l in host_mounts().splitlines() if root in l]
        assert len(mounts) == len(set(mounts)), mounts      # nothing stacked
    s, j = w.put("/config", {})
    assert s == 200, j
    assert wh.wait_for(lambda: root not in host_mounts()), host_mounts()
    assert host_mounts() == before


SLOW = '''
import os, time

def application(environ, start_response):
    if environ["PATH_INFO"] == "/sleep":
        time.sleep(60)
    start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
    return [b"ok"]
'''


def test_pid_namespace_worker_killed_on_timeout(warren_factory):
    """main learns a pid-namespaced worker's host pid (pidfd from the
    prototype): the router's limits.timeout kill reaches the right process."""
    # Without a rootfs the runtime is exec'd by path as user nobody: a
    # --modulesdir nobody can reach (the checkout may be private).
    rt = wh.runtimes_modulesdir()
    try:
        pid_namespace_timeout(warren_factory(extra_args=["--modulesdir", rt]))
    finally:
        shutil.rmtree(rt, ignore_errors=True)


def pid_namespace_timeout(w):
    port = wh.free_port()
    appdir = os.path.join(w.dir, "py")
    os.makedirs(appdir)
    with open(os.path.join(appdir, "slow_wsgi.py"), "w") as f:
        f.write(SLOW)
    c = {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/s"}},
         "applications": {"s": {"type": "python", "path": appdir, "module": "slow_wsgi",
                                "processes": 1, "limits": {"timeout": 1},
                                "isolation": {"namespaces": {"pid": True}}}}}
    put_ok(w, c)
    first = hh.get(port).header("X-Pid")
    w.baseline_all()          # the post-test check then sees what the kill leaked
    host = worker(w)
    assert host is not None and str(host) != first        # a pid inside the namespace
    assert "worker 1 (pid %d) ready" % host in w.log()
    assert hh.get(port, "/sleep").status == 503
    assert wh.wait_for(lambda: not wh.proc_alive(host), timeout=10)
    assert "kill(worker" not in w.log()
    assert wh.wait_for(lambda: hh.get(port).status == 200, timeout=10)


def test_language_deps_follow_symlinks_only_inside_the_rootfs(warren):
    """A distro rootfs has /lib64 -> usr/lib64: deps are bound through such
    links as if the rootfs were "/" (an absolute link target stays inside
    it); proc and tmp never follow one (test_symlinked_proc_fails_cleanly)."""
    w = warren
    port = wh.free_port()
    root = rootfs(w)
    outside = os.path.join(w.dir, "outside")
    os.makedirs(outside)
    os.makedirs(os.path.join(root, "usr", "lib64"))
    os.symlink("usr/lib64", os.path.join(root, "lib64"))
    # absolute: inside the rootfs it means ROOT/OUTSIDE, not the host's
    os.symlink(outside, os.path.join(root, "usr", "lib"))
    os.makedirs(root + outside)
    before = host_mounts()
    # (no tmpfs: it would hide ROOT/tmp, where OUTSIDE is)
    put_ok(w, cfg(port, {"namespaces": {"mount": True}, "rootfs": root,
                         "automount": {"tmpfs": False}}))
    assert hh.get(port).body == b"Hello, world\n"
    pid = worker(w)
    with open("/proc/%d/mountinfo" % pid) as f:
        mps = [l.split()[4] for l in f]
    assert "/usr/lib64/ld-linux-x86-64.so.2" in mps, mps
    assert any(m.startswith(outside + "/") for m in mps), mps      # ROOT/OUTSIDE/...
    assert os.listdir(outside) == []
    assert host_mounts() == before
    w.baseline_all()

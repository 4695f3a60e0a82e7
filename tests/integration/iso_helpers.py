"""
Helpers for the isolation tests (test_isolation*.py): an app config around
the inspection app (build/apps/inspect, or its WSGI twin inspect_wsgi.py),
its report, rootfs directories, /proc/*/mountinfo parsing, the host view of
a worker, cgroup v2 discovery.

Standard library only; Debian's /usr/bin/python3.
"""

import contextlib
import json
import os
import re
import shutil
import subprocess
import urllib.parse
import urllib.request

import http_helpers as hh
import warren_helpers as wh

HERE = os.path.dirname(os.path.abspath(__file__))
NS_KEYS = ("user", "pid", "mnt", "net", "uts", "ipc", "cgroup")
# isolation.namespaces key -> /proc/PID/ns name
NS_OF = {"credential": "user", "pid": "pid", "mount": "mnt", "network": "net",
         "uname": "uts", "ipc": "ipc", "cgroup": "cgroup"}
APP = "i"
INSPECT_IN_ROOT = "/inspect"
WSGI_MODULE = "inspect_wsgi"
# what every failed start says first (src/daemon/apps.c)
START_FAILED = 'Application "%s" could not start: '
# "call(object) failed: errno text." (ISO_CONTRACT.md, Error reporting)
STEP_RE = re.compile(r"\w+\((?P<obj>[^)]*)\) failed: (?P<err>[A-Z][^:]*)\.$")


# --------------------------------------------------------------------------
# config and requests

def app_config(port, isolation=None, exe=None, name=APP, processes=1, **app):
    a = {"type": "external", "executable": exe, "processes": processes}
    if isolation is not None:
        a["isolation"] = isolation
    a.update(app)
    return {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/" + name}},
            "applications": {name: a}}


def put(w, cfg):
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, wh.SUCCESS), "config refused: %r %r\n%s" % (
        s, j, json.dumps(cfg, indent=1))


def start_inspect(w, isolation=None, exe=None, port=None, **app):
    """PUT an inspect app (exe: a host path, or the path inside the rootfs)
    behind a listener; returns (port, cfg)."""
    port = port or wh.free_port()
    exe = exe or (INSPECT_IN_ROOT if isolation and isolation.get("rootfs")
                  else wh.app_binary(w.dir, "inspect"))
    cfg = app_config(port, isolation, exe, **app)
    put(w, cfg)
    # what the running generation holds in main and the router (its
    # channels, its rootfs and program fds) is not a leak; anything more
    # after a later (failed) PUT is
    w.baseline_all()
    return port, cfg


def report(port):
    r = hh.get(port, "/")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json", r
    return json.loads(r.body)


def exists(port, path):
    r = hh.get(port, "/exists?path=" + urllib.parse.quote(path, safe="/"))
    assert r.status == 200, r
    return json.loads(r.body)["exists"]


def failed_step(detail, name=APP):
    """(object, errno text) of a start failure's detail; asserts its form."""
    assert detail.startswith(START_FAILED % name), detail
    m = STEP_RE.search(detail)
    assert m, "no 'call(path) failed: errno text.' in %r" % detail
    return m.group("obj"), m.group("err")


# --------------------------------------------------------------------------
# namespaces, processes

def ns_of(pid="self"):
    return {n: os.stat("/proc/%s/ns/%s" % (pid, n)).st_ino for n in NS_KEYS}


def worker_host_pid(w, rep):
    """The host pid of the worker that wrote report rep: a worker of ours
    whose innermost pid (NSpid) is rep's pid, in rep's pid namespace."""
    _, workers = w.app_processes()
    for p in workers:
        st = wh.proc_status(p)
        if st is None:
            continue
        if int(st.get("NSpid", str(p)).split()[-1]) != rep["pid"]:
            continue
        want = (rep.get("ns") or {}).get("pid")
        try:
            if want is not None and os.stat("/proc/%d/ns/pid" % p).st_ino != want:
                continue
        except OSError:
            continue
        return p
    raise AssertionError("no worker with inner pid %d among %r" % (rep["pid"], workers))


def host_ids(pid):
    st = wh.proc_status(pid)
    return int(st["Uid"].split()[0]), int(st["Gid"].split()[0])


def read(path):
    with open(path) as f:
        return f.read()


# --------------------------------------------------------------------------
# mountinfo

def _unescape(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def parse_mountinfo(text):
    """[{"id", "parent", "root", "point", "opts", "optional", "fstype",
    "source", "super"}] of a mountinfo text."""
    out = []
    for line in (text or "").splitlines():
        left, _, right = line.partition(" - ")
        f = left.split()
        r = right.split()
        out.append({"id": int(f[0]), "parent": int(f[1]), "root": _unescape(f[3]),
                    "point": _unescape(f[4]), "opts": f[5], "optional": f[6:],
                    "fstype": r[0], "source": _unescape(r[1]) if len(r) > 1 else "",
                    "super": r[2] if len(r) > 2 else "", "line": line})
    return out


def mount_at(rep_or_text, point):
    """The last (topmost) mount on point in a report's mountinfo, or None."""
    text = rep_or_text["mountinfo"] if isinstance(rep_or_text, dict) else rep_or_text
    found = [m for m in parse_mountinfo(text) if m["point"] == point]
    return found[-1] if found else None


def tmp_is_tmpfs(rep):
    m = mount_at(rep, "/tmp")
    return m is not None and m["fstype"] == "tmpfs"


def shared_mounts(rep):
    """Mounts of a report's mountinfo that have shared propagation (peers
    outside could see what is mounted under them)."""
    return [m["line"] for m in parse_mountinfo(rep["mountinfo"])
            if any(o.startswith("shared:") for o in m["optional"])]


def mounts_under(prefixes, pid="self"):
    """Lines of /proc/PID/mountinfo whose mount point or root is at or
    under one of prefixes (our test's own directories)."""
    out = []
    for m in parse_mountinfo(read("/proc/%s/mountinfo" % pid)):
        for p in prefixes:
            p = p.rstrip("/")
            if any(x == p or x.startswith(p + "/") for x in (m["point"], m["root"])):
                out.append(m["line"])
                break
    return sorted(out)


def mount_points(pid="self"):
    return sorted(m["point"] for m in parse_mountinfo(read("/proc/%s/mountinfo" % pid)))


# --------------------------------------------------------------------------
# rootfs

def make_rootfs(w, name="root", libs=False):
    """A rootfs dir under the test's dir holding only the inspection app at
    /inspect; libs: also the libraries it links (so it runs without the
    language_deps automount)."""
    root = os.path.join(w.dir, name)
    os.makedirs(root, exist_ok=True)
    os.chmod(root, 0o755)
    src = os.path.join(wh.APPS_DIR, "inspect")
    if not os.path.exists(src):
        raise wh.WarrenError("%s is missing: run make build/apps/inspect" % src)
    shutil.copy(src, root + INSPECT_IN_ROOT)
    os.chmod(root + INSPECT_IN_ROOT, 0o755)
    if libs:
        for lib in elf_deps(src):
            dst = root + lib
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(lib, dst)          # follows the symlink: the real file
    for d, _, _ in os.walk(root):
        os.chmod(d, 0o755)
    return root


def site_rootfs(w, files, name="siteroot"):
    """A rootfs dir under the test's dir holding only files (relative path
    -> text or bytes), everything readable by nobody: a language runtime's
    app with nothing of the host but what language_deps binds in."""
    root = os.path.join(w.dir, name)
    for rel, text in files.items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb" if isinstance(text, bytes) else "w") as f:
            f.write(text)
    for d, _, names in os.walk(root):
        os.chmod(d, 0o755)
        for n in names:
            os.chmod(os.path.join(d, n), 0o644)
    return root


# user, pid and mount namespaces: a rootfs without root on the host
ROOT_NS_USER = {"credential": True, "mount": True, "pid": True}


@contextlib.contextmanager
def app_in_rootfs(warren_factory, files, name, app, secret=True):
    """A warrend (the language runtimes in its --modulesdir) serving
    application `name` (its keys `app`) on a free port from a rootfs holding
    only `files` (site_rootfs), in its own user, pid and mount namespaces;
    with `secret`, HOST_FILE in its environment names a host file it must
    not reach. Yields (w, port). After the block the application goes, and
    none of its mounts may stay."""
    rt = wh.runtimes_modulesdir()
    try:
        w = warren_factory(extra_args=["--modulesdir", rt])
        root = site_rootfs(w, files)
        port = wh.free_port()
        a = dict(app, processes=1, isolation={"namespaces": ROOT_NS_USER, "rootfs": root})
        if secret:
            a["environment"] = {"HOST_FILE": host_secret(w)}
        put(w, {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/" + name}},
                "applications": {name: a}})
        w.baseline_all()
        yield w, port
        s, _ = w.put("/config", {"listeners": {}, "applications": {}})
        assert s == 200
        assert wh.wait_for(lambda: mounts_under([w.dir]) == [], 5.0), mounts_under([w.dir])
    finally:
        shutil.rmtree(rt, ignore_errors=True)


def fetch(port, path):
    """GET path: the body of a 200 answer."""
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
        assert r.status == 200
        return r.read()


def host_secret(w):
    """A world-readable file of the host, outside any rootfs: an isolated
    app must not reach it. Returns its path."""
    path = os.path.join(w.dir, "host-secret")
    with open(path, "w") as f:
        f.write("secret")
    os.chmod(path, 0o644)
    return path


def elf_deps(path):
    """Absolute paths of the shared objects path loads (ldd)."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        m = re.search(r"(?:=>\s*)?(/\S+)\s+\(0x", line)
        if m:
            libs.append(m.group(1))
    return libs


def make_wsgi_dir(base, name="app"):
    d = os.path.join(base, name.lstrip("/"))
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(HERE, WSGI_MODULE + ".py"), d)
    for x in (d, os.path.join(d, WSGI_MODULE + ".py")):
        os.chmod(x, 0o755)
    return d


@contextlib.contextmanager
def python_in_rootfs(warren_factory, namespaces, **app):
    """A warrend whose --modulesdir holds warren-python, running the WSGI
    twin from a rootfs (w.dir/pyroot, the module under /app inside) as app
    "py" behind a listener; yields (w, port). app: more app options."""
    rt = wh.runtimes_modulesdir()
    try:
        w = warren_factory(extra_args=["--modulesdir", rt])
        root = os.path.join(w.dir, "pyroot")
        os.mkdir(root)
        os.chmod(root, 0o755)
        make_wsgi_dir(root, "app")
        port = wh.free_port()
        a = {"type": "python", "path": "/app", "module": WSGI_MODULE, "processes": 1,
             "isolation": {"namespaces": namespaces, "rootfs": root}}
        a.update(app)
        put(w, {"listeners": {"127.0.0.1:%d" % port: {"pass": "applications/py"}},
                "applications": {"py": a}})
        yield w, port
    finally:
        shutil.rmtree(rt, ignore_errors=True)


# --------------------------------------------------------------------------
# cgroup v2

def cgroup2_mount():
    """Mount point of the cgroup v2 hierarchy (None when there is none)."""
    for m in parse_mountinfo(read("/proc/self/mountinfo")):
        if m["fstype"] == "cgroup2":
            return m["point"]
    return None


def cgroup2_of(pid="self"):
    """The cgroup v2 path of a process ("0::/a/b" -> "/a/b")."""
    for line in read("/proc/%s/cgroup" % pid).splitlines():
        if line.startswith("0::"):
            return line[3:]
    return None

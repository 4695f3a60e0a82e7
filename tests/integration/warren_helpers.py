"""
Integration harness for warrend: start the real daemon in a private temp dir,
talk to its control API over AF_UNIX (or TCP) with http.client, find its
processes by role through /proc, watch its log and its file descriptors.

Standard library only; run with Debian's /usr/bin/python3 (pytest 7.2).
"""

import copy
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
BINARY = os.environ.get("WARREN_BIN", os.path.join(REPO, "build", "warrend"))

NOBODY_UID = 65534
NOGROUP_GID = 65534

ROLES = ("controller", "router")
LOG_LINE_RE = re.compile(
    r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} "
    r"\[(debug|info|notice|warn|error|crit|alert|emerg)\] (\d+)#(\d+) .*\S")
BAD_LEVEL_RE = re.compile(r"\[(alert|emerg)\]")


# --------------------------------------------------------------------------
# small utilities

def become_subreaper():
    """Orphans of processes we start (a daemonized warrend, its children)
    are re-parented to us instead of init: every process a test caused stays
    findable as our descendant, and nobody else's warrend is ever mistaken
    for ours."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


def reap(pid):
    """Collect an adopted child that has exited (no-op if not ours)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_zygote(pid):
    """A Python app's zygote (it imports the app once and forks the workers)
    is a child of the prototype like the workers, but not one of them."""
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip() == "warren-zygote"
    except OSError:
        return False


def runtimes_modulesdir():
    """A --modulesdir that user nobody can reach, holding a copy of the
    language runtimes (build/warren-python, build/warren-php,
    build/warren-perl, build/warren-ruby, build/warren-java): the checkout itself may be
    private (a clone in a 0700 directory). WARREN_PHP_BIN / WARREN_PERL_BIN
    / WARREN_RUBY_BIN name other builds of those runtimes (make integration
    runs their sanitizer builds). The caller removes it."""
    d = make_tmpdir("warren-rt-")
    os.chmod(d, 0o755)
    other = {"warren-php": os.environ.get("WARREN_PHP_BIN"),
             "warren-perl": os.environ.get("WARREN_PERL_BIN"),
             "warren-ruby": os.environ.get("WARREN_RUBY_BIN")}
    for rt in ("warren-python", "warren-php", "warren-perl", "warren-ruby", "warren-java"):
        src = other.get(rt)
        shutil.copy(src or os.path.join(REPO, "build", rt), os.path.join(d, rt))
        os.chmod(os.path.join(d, rt), 0o755)
    return d


def my_warren_procs():
    """{pid: starttime} of live warrend processes descending from this test
    process (by title or binary path)."""
    out = {}
    for p, st in descendants(os.getpid()).items():
        if st[0] in ("Z", "X"):
            continue
        c = proc_cmdline(p) or ""
        if c.startswith("warren:") or c.startswith(BINARY):
            out[p] = st[2]
    return out

def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    try:
        s.bind((host, 0))
        return s.getsockname()[1]
    finally:
        s.close()


def ipv6_loopback_ok():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def wait_for(pred, timeout=5.0, interval=0.02):
    """Poll pred() until it returns a truthy value; return it (or the last
    falsy value after the timeout)."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() >= end:
            return v
        time.sleep(interval)


def tcp_connect(port, host="127.0.0.1", family=socket.AF_INET, timeout=2.0):
    """True if a TCP connect succeeds, False if refused."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect((host, port))
        return True
    except (ConnectionRefusedError, socket.timeout):
        return False
    finally:
        s.close()


def unix_connect(path, timeout=2.0):
    """True if a connect to a unix stream socket succeeds."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        return True
    except (ConnectionRefusedError, FileNotFoundError, socket.timeout):
        return False
    finally:
        s.close()


# --------------------------------------------------------------------------
# /proc

def proc_stat(pid):
    """(state, ppid, starttime) or None if the process is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read().decode("latin-1")
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = data[data.rindex(")") + 2:].split()
    return rest[0], int(rest[1]), int(rest[19])


def proc_alive(pid, starttime=None):
    """Running (not a zombie) and, if given, the same start time."""
    st = proc_stat(pid)
    if st is None or st[0] in ("Z", "X"):
        return False
    return starttime is None or st[2] == starttime


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            raw = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def proc_status(pid):
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                out[k] = v.strip()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return out


def proc_fds(pid):
    """{fd: readlink target}."""
    d = "/proc/%d/fd" % pid
    out = {}
    try:
        names = os.listdir(d)
    except (FileNotFoundError, ProcessLookupError):
        return None
    for n in names:
        try:
            out[int(n)] = os.readlink(os.path.join(d, n))
        except OSError:
            pass
    return out


def all_procs():
    """{pid: (state, ppid, starttime)} for every process."""
    out = {}
    for n in os.listdir("/proc"):
        if n.isdigit():
            st = proc_stat(int(n))
            if st is not None:
                out[int(n)] = st
    return out


def descendants(root):
    """All live descendants of root: {pid: (state, ppid, starttime)}."""
    procs = all_procs()
    kids = {}
    for pid, st in procs.items():
        kids.setdefault(st[1], []).append(pid)
    out, todo = {}, [root]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            if c not in out:
                out[c] = procs[c]
                todo.append(c)
    return out


def listen_inodes_tcp(port):
    """Inodes of LISTEN sockets (v4 and v6) on a local port."""
    inodes = set()
    for fn in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    lport = int(parts[1].rsplit(":", 1)[1], 16)
                    if lport == port and parts[3] == "0A":
                        inodes.add(parts[9])
        except FileNotFoundError:
            pass
    return inodes


def listen_inodes_unix(path):
    inodes = set()
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]
            if len(parts) >= 8 and parts[7] == path and parts[5] == "01" \
                    and int(parts[3], 16) & 0x10000:   # __SO_ACCEPTCON
                inodes.add(parts[6])
    return inodes


def socket_inodes_of(pid):
    fds = proc_fds(pid) or {}
    return {t[len("socket:["):-1] for t in fds.values() if t.startswith("socket:[")}


# --------------------------------------------------------------------------
# HTTP over AF_UNIX / TCP

class UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path, timeout=10):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers          # list of (name, value)
        self.body = body                # bytes

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %r>" % (self.status, self.body[:300])


def parse_control(addr):
    """'unix:/p' -> (AF_UNIX, '/p'); '1.2.3.4:80' / '[::1]:80' -> (family, (h, p))."""
    if addr.startswith("unix:"):
        return socket.AF_UNIX, addr[5:]
    if addr.startswith("["):
        host, _, port = addr[1:].partition("]:")
        return socket.AF_INET6, (host, int(port))
    host, _, port = addr.rpartition(":")
    return socket.AF_INET, (host, int(port))


def http_request(control, method, path, body=None, headers=None, timeout=15):
    fam, where = parse_control(control)
    if fam == socket.AF_UNIX:
        conn = UnixHTTPConnection(where, timeout=timeout)
    else:
        conn = http.client.HTTPConnection(where[0], where[1], timeout=timeout)
    try:
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
        if isinstance(body, str):
            body = body.encode("utf-8")
        hdrs = dict(headers or {})
        if body is None and method in ("PUT", "POST"):
            body = b""
        conn.request(method, path, body=body, headers=hdrs)
        r = conn.getresponse()
        data = r.read()
        return Response(r.status, r.getheaders(), data)
    finally:
        conn.close()


def raw_exchange(sock_path, payload, timeout=10, family=socket.AF_UNIX):
    """Send raw bytes, read until EOF. Returns bytes received."""
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(sock_path)
        s.sendall(payload)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
        return b"".join(chunks)
    finally:
        s.close()


# --------------------------------------------------------------------------
# the daemon

def make_tmpdir(prefix="warren-it-"):
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(d, 0o755)        # children run as nobody: must be traversable
    return d


class WarrenError(AssertionError):
    pass


class Warren:
    """One warrend instance with everything inside its own temp dir."""

    def __init__(self, tmpdir=None, control=None, extra_args=(), daemon=False,
                 binary=BINARY, user=None, group=None, log_name="warren.log"):
        self.dir = tmpdir or make_tmpdir()
        self.sock = os.path.join(self.dir, "control.sock")
        self.control = control or ("unix:" + self.sock)
        self.statedir = os.path.join(self.dir, "state")
        self.tmp = os.path.join(self.dir, "tmp")
        self.log_path = os.path.join(self.dir, log_name)
        self.pid_path = os.path.join(self.dir, "warren.pid")
        self.stdout_path = os.path.join(self.dir, "stdout.txt")
        self.stderr_path = os.path.join(self.dir, "stderr.txt")
        self.extra_args = list(extra_args)
        self.daemon = daemon
        self.binary = binary
        self.user = user
        self.group = group
        for d in (self.statedir, self.tmp):
            os.makedirs(d, exist_ok=True)
        self.proc = None          # Popen (no-daemon mode)
        self.main_pid = None
        self.main_start = None
        self.seen = {}            # pid -> starttime of every process seen
        self.fd_baseline = {}     # role -> (pid, count)
        self.exit_status = None
        self.allow_alert = False
        self.allow_emerg = False
        self.log_mark = 0         # check_log looks at the log from here on

    # ---- command line
    def argv(self):
        a = [self.binary]
        if not self.daemon:
            a.append("--no-daemon")
        a += ["--control", self.control, "--pid", self.pid_path,
              "--log", self.log_path, "--statedir", self.statedir,
              "--tmpdir", self.tmp]
        if self.user:
            a += ["--user", self.user]
        if self.group:
            a += ["--group", self.group]
        return a + self.extra_args

    # ---- lifecycle
    def start(self, wait=True, timeout=10):
        if not os.access(self.binary, os.X_OK):
            raise WarrenError("warrend binary not found at %s" % self.binary)
        self.exit_status = None
        out = open(self.stdout_path, "ab")
        err = open(self.stderr_path, "ab")
        try:
            if self.daemon:
                r = subprocess.run(self.argv(), stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err, timeout=timeout)
                if r.returncode != 0:
                    raise WarrenError("daemon start exited %d: %s" %
                                      (r.returncode, self.stderr_text()))
                with open(self.pid_path) as f:
                    self.main_pid = int(f.read().strip())
            else:
                self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                             stdout=out, stderr=err)
                self.main_pid = self.proc.pid
        finally:
            out.close()
            err.close()
        st = proc_stat(self.main_pid)
        self.main_start = st[2] if st else None
        self.seen[self.main_pid] = self.main_start
        if wait:
            self.wait_ready(timeout)
            self.wait_roles()
            self.baseline_all()
        return self

    def alive(self):
        if self.main_pid is None:
            return False
        if self.proc is not None:
            return self.proc.poll() is None
        return proc_alive(self.main_pid, self.main_start)

    def wait_ready(self, timeout=10):
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if not self.alive():
                raise WarrenError("warrend exited during start (status %s)\n"
                                  "stderr: %s\nlog: %s" % (
                                      self.proc.returncode if self.proc else "?",
                                      self.stderr_text()[-2000:],
                                      self.log()[-2000:]))
            try:
                r = self.request("GET", "/", timeout=2)
                if r.status == 200:
                    return
                last = r
            except (OSError, http.client.HTTPException) as e:
                last = e
            time.sleep(0.02)
        raise WarrenError("warrend not ready after %ss: %r\nlog: %s" %
                          (timeout, last, self.log()[-2000:]))

    def wait_roles(self, timeout=5):
        ok = wait_for(lambda: all(len(self.pids(r)) == 1 for r in ROLES), timeout)
        if not ok:
            raise WarrenError("expected one controller and one router, got %r" %
                              self.children())

    def stop(self, sig=signal.SIGTERM, timeout=5):
        """Signal main, wait for it, return its exit status (None in daemon
        mode). Raises if it does not exit or leaves processes behind."""
        if self.main_pid is None:
            return self.exit_status
        self.children()          # record everything still alive
        try:
            os.kill(self.main_pid, sig)
        except ProcessLookupError:
            pass
        t0 = time.monotonic()
        gone = wait_for(lambda: not self.alive(), timeout)
        elapsed = time.monotonic() - t0
        if not gone:
            self.kill_all()
            raise WarrenError("warrend main did not exit %.1fs after signal %d"
                              % (timeout, sig))
        if self.proc is not None:
            self.exit_status = self.proc.wait()
        else:
            reap(self.main_pid)
        self.main_pid = None
        self.stop_elapsed = elapsed
        wait_for(lambda: not self.leftovers(), 3.0)
        left = self.leftovers()
        for p in self.seen:
            if p not in left:
                reap(p)       # adopted by us (subreaper) once main is gone
        if left:
            desc = ["%d %r" % (p, proc_cmdline(p)) for p in left]
            self.kill_all()
            raise WarrenError("processes left behind after stop: %s" % desc)
        return self.exit_status

    def leftovers(self):
        return [p for p, st in self.seen.items() if proc_alive(p, st)]

    def kill_all(self):
        """Last resort: SIGKILL only processes this instance started."""
        for p, st in list(self.seen.items()):
            if proc_alive(p, st):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.main_pid = None

    def restart(self):
        self.stop()
        return self.start()

    # ---- processes
    def children(self):
        """{pid: title} of every descendant of main (recorded in self.seen)."""
        if self.main_pid is None:
            return {}
        out = {}
        for pid, st in descendants(self.main_pid).items():
            self.seen.setdefault(pid, st[2])
            if self.seen[pid] != st[2]:
                self.seen[pid] = st[2]
            if st[0] in ("Z", "X"):
                continue
            out[pid] = proc_cmdline(pid)
        return out

    def pids(self, role):
        if role == "main":
            return [self.main_pid] if self.alive() else []
        title = "warren: " + role
        return sorted(p for p, t in self.children().items()
                      if t is not None and t.split()[:2] == title.split())

    def pid(self, role):
        p = self.pids(role)
        if len(p) != 1:
            raise WarrenError("expected one %s process, got %r (children: %r)" %
                              (role, p, self.children()))
        return p[0]

    def wait_new(self, role, old, timeout=3.0):
        """Wait for a (single) process of role whose pid is not old."""
        def f():
            p = self.pids(role)
            return p[0] if len(p) == 1 and p[0] != old else None
        return wait_for(f, timeout)

    # ---- fds
    def legit_targets(self):
        """fd targets that the current config accounts for: listen sockets of
        configured listeners, the access log. They are not counted as growth
        (deleting a listener must close them: tested separately)."""
        out = set()
        try:
            r = self.request("GET", "/config", timeout=5)
            cfg = json.loads(r.body) if r.status == 200 else {}
        except (OSError, ValueError, http.client.HTTPException):
            cfg = {}
        if not isinstance(cfg, dict):
            return out
        for key in (cfg.get("listeners") or {}):
            if key.startswith("unix:"):
                inodes = listen_inodes_unix(key[5:])
            else:
                try:
                    inodes = listen_inodes_tcp(int(key.rsplit(":", 1)[1]))
                except ValueError:
                    continue
            out |= {"socket:[%s]" % i for i in inodes}
        al = cfg.get("access_log")
        if isinstance(al, dict):
            al = al.get("path")
        if isinstance(al, str):
            out.add(al)
        return out

    def app_processes(self):
        """(prototypes, workers): pids of the running application processes."""
        kids = self.children()
        protos = {p for p, t in kids.items()
                  if t is not None and t.startswith("warren: ") and t.endswith(" prototype")}
        procs = descendants(self.main_pid) if self.main_pid else {}
        workers = {p for p, st in procs.items()
                   if st[1] in protos and st[0] not in ("Z", "X") and not is_zygote(p)}
        return protos, workers

    def app_fd_allowance(self, pid):
        """Channels the running applications account for: main holds one per
        prototype, the router one per worker."""
        if self.main_pid is None:
            return 0
        protos, workers = self.app_processes()
        if pid == self.main_pid:
            return len(protos)
        if pid in self.pids("router"):
            return len(workers)
        return 0

    def fd_count(self, pid, legit=None):
        f = proc_fds(pid)
        if f is None:
            return None
        if legit is None:
            legit = self.legit_targets()
        return sum(1 for t in f.values() if t not in legit) - self.app_fd_allowance(pid)

    def settled_fd_count(self, pid, timeout=3.0):
        """Count once three consecutive reads 50 ms apart agree."""
        end = time.monotonic() + timeout
        last, same = None, 0
        legit = self.legit_targets()
        while time.monotonic() < end:
            c = self.fd_count(pid, legit)
            if c == last:
                same += 1
                if same >= 2:
                    return c
            else:
                last, same = c, 0
            time.sleep(0.05)
        return last

    def baseline(self, role):
        pid = self.main_pid if role == "main" else self.pid(role)
        self.fd_baseline[role] = (pid, self.settled_fd_count(pid))

    def baseline_all(self, timeout=3.0):
        """Baseline main, controller and router together: done once two
        consecutive reads 50 ms apart agree for all three."""
        pids = {"main": self.main_pid}
        for role in ROLES:
            pids[role] = self.pid(role)
        legit = self.legit_targets()
        end = time.monotonic() + timeout
        last = None
        while True:
            cur = {r: self.fd_count(p, legit) for r, p in pids.items()}
            if cur == last or time.monotonic() >= end:
                break
            last = cur
            time.sleep(0.05)
        for r, p in pids.items():
            self.fd_baseline[r] = (p, cur[r])

    def check_fds(self, timeout=3.0):
        """Raise if a process's fd count grew versus its baseline, or if a
        role was replaced without the test re-baselining it."""
        if not self.alive():
            return
        problems = []
        for role, (pid, base) in self.fd_baseline.items():
            cur = self.main_pid if role == "main" else \
                (self.pids(role) or [None])[0]
            if cur != pid:
                problems.append("%s pid changed %s -> %s during the test "
                                "(unexpected restart?)" % (role, pid, cur))
                continue
            legit = self.legit_targets()
            ok = wait_for(lambda: (self.fd_count(pid, legit) or 0) <= base,
                          timeout, 0.05)
            if not ok:
                fds = proc_fds(pid) or {}
                problems.append("%s (pid %d) fd count grew %d -> %d "
                                "(not counting %r): %r" % (
                                    role, pid, base, self.fd_count(pid, legit),
                                    sorted(legit), sorted(fds.items())))
        if problems:
            raise WarrenError("; ".join(problems))

    # ---- log
    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_has(self, needle, timeout=10.0):
        """True once the error log holds needle. A worker's stderr reaches
        the log through main, after the response the client already has:
        a test that looks for a worker's words must wait for them."""
        return wait_for(lambda: needle in self.log(), timeout, 0.05)

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def mark_log(self):
        try:
            self.log_mark = os.path.getsize(self.log_path)
        except FileNotFoundError:
            self.log_mark = 0

    def bad_log_lines(self):
        out = []
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self.log_mark)
                text = f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            # The level of a log entry is the one at its start: an app's
            # stderr relayed into the log ("... [notice] ... app "x" worker
            # 1 (pid 2) stderr: ... [alert] ...") is not an alert. A line
            # that is no entry at all is searched whole (nothing raw should
            # reach the log).
            m = LOG_LINE_RE.match(line) or BAD_LEVEL_RE.search(line)
            if not m or m.group(1) not in ("alert", "emerg"):
                continue
            if m.group(1) == "alert" and self.allow_alert:
                continue
            if m.group(1) == "emerg" and self.allow_emerg:
                continue
            out.append(line)
        return out

    def check_log(self):
        bad = self.bad_log_lines()
        if bad:
            raise WarrenError("log has [alert]/[emerg] lines: %r" % bad[:10])

    # ---- control API
    def request(self, method, path, body=None, headers=None, timeout=15):
        return http_request(self.control, method, path, body, headers, timeout)

    def _j(self, r):
        try:
            return r.status, r.json()
        except ValueError:
            raise WarrenError("non-JSON answer %d: %r" % (r.status, r.body[:500]))

    def get(self, path="/config"):
        return self._j(self.request("GET", path))

    def put(self, path, value):
        """PUT value (any JSON value, strings included) encoded as JSON."""
        return self._j(self.request("PUT", path, json.dumps(value)))

    def post(self, path, value):
        return self._j(self.request("POST", path, json.dumps(value)))

    def delete(self, path):
        return self._j(self.request("DELETE", path))

    def config_bytes(self):
        r = self.request("GET", "/config")
        assert r.status == 200, r
        return r.body

    def config(self):
        s, j = self.get("/config")
        assert s == 200, (s, j)
        return j

    def state_file(self):
        return os.path.join(self.statedir, "conf.json")

    def cleanup_dir(self):
        shutil.rmtree(self.dir, ignore_errors=True)


SUCCESS = {"success": "Reconfiguration done."}

APPS_DIR = os.path.join(REPO, "build", "apps")


def app_binary(tmpdir, name="hello"):
    """Copy build/apps/NAME (make build/apps/NAME) into tmpdir, which the
    app user (nobody) can traverse, unlike perhaps the repository; return
    the copy's path."""
    dst = os.path.join(tmpdir, name)
    if not os.path.exists(dst):
        src = os.path.join(APPS_DIR, name)
        if not os.path.exists(src):
            raise WarrenError("%s is missing: run make %s" % (src, "build/apps/" + name))
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)
    return dst


NODE_PKG = os.path.join(REPO, "build", "node", "unit-http")


def node_package(appdir):
    """Copy build/node/unit-http (Warren's unit-http, make
    build/node/unit-http) to appdir/node_modules/unit-http, where the app
    finds it and its user (nobody) can read it, unlike perhaps the
    repository; return the copy's path."""
    nm = os.path.join(appdir, "node_modules")
    os.makedirs(nm, exist_ok=True)
    os.chmod(nm, 0o755)
    dst = os.path.join(nm, "unit-http")
    shutil.copytree(NODE_PKG, dst)
    os.chmod(dst, 0o755)
    for name in os.listdir(dst):
        os.chmod(os.path.join(dst, name), 0o755 if name.endswith(".node") else 0o644)
    return dst


def base_config(tmpdir, port=None, upstream_port=None):
    """A realistic valid configuration (Unit schema)."""
    port = port or free_port()
    upstream_port = upstream_port or free_port()
    return {
        "listeners": {
            "127.0.0.1:%d" % port: {"pass": "routes"},
        },
        "routes": [
            {"match": {"uri": "/health", "method": ["GET", "HEAD"]},
             "action": {"return": 200}},
            {"match": {"uri": "/api/*"},
             "action": {"pass": "applications/app"}},
            {"match": {"uri": "/up/*", "arguments": {"a/b": "1"}},
             "action": {"pass": "upstreams/backend"}},
            {"action": {"return": 200}},
        ],
        "applications": {
            "app": {
                "type": "external",
                "executable": app_binary(tmpdir),
                "processes": {"max": 4, "spare": 1, "idle_timeout": 20},
                "limits": {"timeout": 10, "requests": 1000},
                "environment": {"APP_MODE": "test"},
            },
        },
        "upstreams": {
            "backend": {"servers": {"127.0.0.1:%d" % upstream_port: {"weight": 2}}},
        },
        "settings": {
            "http": {
                "header_read_timeout": 10,
                "body_read_timeout": 10,
                "send_timeout": 10,
                "idle_timeout": 30,
                "max_body_size": 1048576,
            },
        },
        "access_log": os.path.join(tmpdir, "access.log"),
    }


def deep(cfg):
    return copy.deepcopy(cfg)


def assert_logged_in_pieces(w, m):
    """A runtime's error stream was written "M-a ", then "M-b M-c\\nM-tail"
    with no newline after the tail: the log has one entry for the line and
    one for the tail (logged when the request ended), nothing else of M."""
    assert wait_for(lambda: m + "-tail" in w.log(), 5.0, 0.05), w.log()[-3000:]
    lines = [l for l in w.log().splitlines() if m in l]
    assert len(lines) == 2, lines
    assert lines[0].endswith("%s-a %s-b %s-c" % (m, m, m)), lines
    assert lines[1].endswith(m + "-tail"), lines


def put_raw(w, path, body):
    """PUT body (bytes or str, not JSON) to the control API: (status, json)."""
    if isinstance(body, str):
        body = body.encode()
    r = w.request("PUT", path, body)
    try:
        return r.status, r.json()
    except ValueError:
        raise AssertionError("non-JSON answer %d: %r" % (r.status, r.body[:500]))

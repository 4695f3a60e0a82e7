"""inspect_wsgi: the Python WSGI twin of tests/apps/inspect.c, for the
isolation tests (test_isolation.py copies it into an app directory).

  GET /                  the same JSON keys as build/apps/inspect
  GET /exists?path=/p    {"exists": true|false}   (lstat: a symlink exists)

Every field is read in a way that also works without /proc where Python can
(namespace inodes, mountinfo and cgroup are then null). Capability sets and
prctl values come from libc through ctypes when it can be loaded (it needs
libffi: inside a rootfs that is one of the language deps), else from
/proc/self/status; a value neither can tell is null.
"""

import json
import os
import resource
import socket
import urllib.parse

NS_NAMES = ("user", "pid", "mnt", "net", "uts", "ipc", "cgroup")
RLIMITS = (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC),
           ("as", resource.RLIMIT_AS), ("core", resource.RLIMIT_CORE),
           ("cpu", resource.RLIMIT_CPU), ("fsize", resource.RLIMIT_FSIZE))
AF_ALG = getattr(socket, "AF_ALG", 38)
PR_GET_SECCOMP = 21
PR_CAPBSET_READ = 23
PR_GET_NO_NEW_PRIVS = 39
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_IS_SET = 1
SYS_KEYCTL = 250               # x86_64
SYS_USERFAULTFD = 323          # x86_64
KEYCTL_GET_KEYRING_ID = 0
KEY_SPEC_PROCESS_KEYRING = -2
UFFD_USER_MODE_ONLY = 1
CAP_MAX = 64
PR_GET_SECUREBITS = 27
SYS_GETPID = 39                # x86_64
SYS_PROCESS_VM_READV = 310     # x86_64
SYS_IO_URING_SETUP = 425
IO_URING_PARAMS_SIZE = 120     # sizeof(struct io_uring_params)
X32_SYSCALL_BIT = 0x40000000
X32_EXIT_ERRNO = 1             # as inspect.c: exit code 1 + errno


def _libc():
    try:
        import ctypes
        return ctypes, ctypes.CDLL(None, use_errno=True)
    except (ImportError, OSError):
        return None, None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return None


def _status():
    out = {}
    for line in (_read("/proc/self/status") or "").splitlines():
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _namespaces():
    out = {}
    for n in NS_NAMES:
        try:
            out[n] = os.stat("/proc/self/ns/" + n).st_ino
        except OSError:
            out[n] = None
    return out


def _caps(ctypes, libc, status):
    """cap_eff, cap_prm from status; cap_bnd, cap_amb from prctl when
    libc is there (status otherwise): 16 hex digits, as status shows."""
    out = {k: status.get(s) for k, s in (("cap_eff", "CapEff"), ("cap_prm", "CapPrm"),
                                          ("cap_bnd", "CapBnd"), ("cap_amb", "CapAmb"))}
    if libc is None:
        return out
    bnd = amb = 0
    for c in range(CAP_MAX):
        r = libc.prctl(PR_CAPBSET_READ, c, 0, 0, 0)
        if r < 0:
            break
        if r == 1:
            bnd |= 1 << c
        if libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, c, 0, 0) == 1:
            amb |= 1 << c
    out["cap_bnd"], out["cap_amb"] = "%016x" % bnd, "%016x" % amb
    return out


def _int_or(v, fallback):
    try:
        return int(v)
    except (TypeError, ValueError):
        return fallback


def _probe_syscall(ctypes, libc, nr, *args, is_fd=True):
    if libc is None:
        return None
    r = libc.syscall(nr, *[ctypes.c_long(a) for a in args])
    if r < 0:
        return os.strerror(ctypes.get_errno())
    if is_fd:
        os.close(r)
    return "ok"


def _af_alg():
    try:
        socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0).close()
        return "ok"
    except OSError as e:
        return os.strerror(e.errno)


def _af_alg_pair():
    try:
        a, b = socket.socketpair(AF_ALG, socket.SOCK_SEQPACKET, 0)
        a.close()
        b.close()
        return "ok"
    except OSError as e:
        return os.strerror(e.errno)


def _more_probes(ctypes, libc):
    """The probes inspect.c's add_more_probes() makes, the same way."""
    if libc is None:
        return {"af_alg_pair": _af_alg_pair(), "io_uring": None,
                "process_vm_readv": None, "x32": None, "securebits": None}
    params = ctypes.create_string_buffer(IO_URING_PARAMS_SIZE)
    src, dst = ctypes.create_string_buffer(b"x"), ctypes.create_string_buffer(1)
    iov_t = ctypes.c_void_p * 2
    local = iov_t(ctypes.addressof(dst), 1)
    remote = iov_t(ctypes.addressof(src), 1)
    libc.syscall.restype = ctypes.c_long
    r = libc.syscall(ctypes.c_long(SYS_IO_URING_SETUP), ctypes.c_long(1), params)
    uring = os.strerror(ctypes.get_errno()) if r < 0 else "ok"
    if r >= 0:
        os.close(r)
    r = libc.syscall(ctypes.c_long(SYS_PROCESS_VM_READV), ctypes.c_long(os.getpid()),
                     local, ctypes.c_long(1), remote, ctypes.c_long(1), ctypes.c_long(0))
    vm = os.strerror(ctypes.get_errno()) if r < 0 else "ok"
    return {"af_alg_pair": _af_alg_pair(), "io_uring": uring, "process_vm_readv": vm,
            "x32": _x32(ctypes, libc),
            "securebits": libc.prctl(PR_GET_SECUREBITS, 0, 0, 0, 0)}


def _x32(ctypes, libc):
    pid = os.fork()
    if pid == 0:
        r = libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | SYS_GETPID))
        os._exit(X32_EXIT_ERRNO + ctypes.get_errno() if r < 0 else 0)
    _, st = os.waitpid(pid, 0)
    if os.WIFSIGNALED(st):
        return "killed by signal %d" % os.WTERMSIG(st)
    code = os.WEXITSTATUS(st)
    return "ok" if code == 0 else os.strerror(code - X32_EXIT_ERRNO)


def _rlimits():
    out = {}
    for name, res in RLIMITS:
        soft, hard = resource.getrlimit(res)
        out[name] = [-1 if soft == resource.RLIM_INFINITY else soft,
                     -1 if hard == resource.RLIM_INFINITY else hard]
    return out


def report():
    ctypes, libc = _libc()
    status = _status()
    nnp = _int_or(status.get("NoNewPrivs"), None)
    seccomp = _int_or(status.get("Seccomp"), None)
    if libc is not None:
        if nnp is None:
            nnp = libc.prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
        if seccomp is None:
            seccomp = libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0)
    out = {"pid": os.getpid(), "ppid": os.getppid(), "uid": os.getuid(),
           "gid": os.getgid(), "euid": os.geteuid(), "egid": os.getegid(),
           "groups": os.getgroups(), "ns": _namespaces(),
           "hostname": socket.gethostname()}
    out.update(_caps(ctypes, libc, status))
    out.update({
        "no_new_privs": nnp, "seccomp": seccomp,
        "mountinfo": _read("/proc/self/mountinfo"),
        "cgroup": _read("/proc/self/cgroup"),
        "rlimits": _rlimits(), "af_alg": _af_alg(),
        "keyctl": _probe_syscall(ctypes, libc, SYS_KEYCTL, KEYCTL_GET_KEYRING_ID,
                                 KEY_SPEC_PROCESS_KEYRING, 1, is_fd=False),
        "userfaultfd": _probe_syscall(ctypes, libc, SYS_USERFAULTFD, UFFD_USER_MODE_ONLY),
        "env_marker": os.environ.get("MARKER"),
    })
    out.update(_more_probes(ctypes, libc))
    return 200, out


def exists(query):
    paths = urllib.parse.parse_qs(query).get("path")
    if not paths:
        return 400, {"error": "no path= argument"}
    try:
        os.lstat(paths[0])
        return 200, {"exists": True}
    except OSError:
        return 200, {"exists": False}


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/exists":
        status, body = exists(environ.get("QUERY_STRING", ""))
    else:
        status, body = report()
    data = (json.dumps(body) + "\n").encode()
    start_response("%d %s" % (status, "OK" if status == 200 else "Bad Request"),
                   [("Content-Type", "application/json")])
    return [data]

#!/bin/bash
# bench/spawn.sh: how long an isolated worker takes to start, Warren against
# bubblewrap doing the same sandbox, in one run. See bench/README.md. Run as
# root from anywhere: bench/spawn.sh
#
# The sandbox (both sides): user + mount + pid + uts + ipc namespaces, a
# rootfs holding only the app, /proc, a tmpfs /tmp, the app's libraries
# bound read-only. The app: build/apps/inspect (libwarren), ready when it
# has said hello on its channel.
#
# Environment knobs (defaults in brackets):
#   ROUNDS [50]     samples per measure (Warren and bwrap alternate)
#   WORKERS [20]    workers of the generation used for the per-extra-worker cost
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-50}
WORKERS=${WORKERS:-20}
PY=/usr/bin/python3          # Debian's interpreter, whatever else is on PATH
GOAL_MS=5

# ---- 1. tools (Debian packages, only when missing)
if ! command -v bwrap >/dev/null; then
    echo "== installing bubblewrap"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "   apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends bubblewrap >/dev/null \
        || echo "   could not install bubblewrap: Warren is measured alone"
fi
[ "$(id -u)" = 0 ] || { echo "run as root: warrend's sandbox needs it"; exit 1; }

echo "== building warrend and the inspection app"
make -C "$top" --no-print-directory build/warrend build/apps/inspect

# ---- 2. a private world in a temp dir: the rootfs holds the app only
work=$(mktemp -d /tmp/warren-spawn-bench-XXXXXX)
chmod 755 "$work"
root="$work/root"
mkdir -p "$root" "$work/state" "$work/tmp" "$work/logs"
cp "$top/build/apps/inspect" "$root/inspect"
chmod -R a+rX "$root"

. "$top/bench/common.sh"     # pids=(), cleanup on exit, free_port

start_warrend "$work/logs/warren.log"
[ -S "$sock" ] || { echo "warrend did not start:"; tail -5 "$work/logs/warren.log"; exit 1; }
PORT=$(free_port)

echo "== $(uname -r), $(nproc) CPUs; warrend $("$top/build/warrend" --version 2>&1 | head -1)" \
     "(pid $WPID); $(command -v bwrap >/dev/null && bwrap --version || echo "no bwrap")"

# ---- 3. the measures (Python: a socketpair for bwrap's app, perf_counter)
$PY - "$sock" "$root" "$PORT" "$ROUNDS" "$WORKERS" "$GOAL_MS" <<'PYBENCH'
import http.client, json, os, shutil, socket, statistics, subprocess, sys, time

sock_path, root, port, rounds, workers, goal = sys.argv[1:7]
port, rounds, workers, goal = int(port), int(rounds), int(workers), float(goal)
APP = "/inspect"
NS = {"credential": True, "mount": True, "pid": True, "uname": True, "ipc": True}


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self):
        super().__init__("localhost", timeout=30)

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(sock_path)


def control(method, path, body=None):
    c = UnixHTTP()
    try:
        c.request(method, path, body=None if body is None else json.dumps(body))
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def configure(processes, isolated=True):
    app = {"type": "external", "executable": APP if isolated else root + APP,
           "processes": processes}
    if isolated:
        app["isolation"] = {"namespaces": NS, "rootfs": root}
    s, b = control("PUT", "/config", {
        "listeners": {"127.0.0.1:%d" % port: {"pass": "applications/spawn"}},
        "applications": {"spawn": app}})
    if s != 200:
        sys.exit("warrend refused the config: %d %s" % (s, b))


def warren_once():
    """A new generation (sandbox, prototype, its workers all ready): the
    restart endpoint answers when every new worker has said hello."""
    t = time.perf_counter()
    s, b = control("GET", "/control/applications/spawn/restart")
    ms = (time.perf_counter() - t) * 1000
    if s != 200:
        sys.exit("restart failed: %d %s" % (s, b))
    return ms


def elf_binds(path):
    """bwrap's read-only binds for what the app links: the directories of
    its libraries and its interpreter, as Warren's language_deps does."""
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
    binds = []
    for line in out.split("\n"):
        parts = line.split()
        lib = parts[2] if "=>" in parts and len(parts) > 2 else (parts[0] if parts else "")
        if not lib.startswith("/"):
            continue
        real = os.path.realpath(lib)
        if line.strip().startswith("/"):                  # the interpreter
            binds += ["--ro-bind", real, lib]
        elif ["--ro-bind", os.path.dirname(real), os.path.dirname(real)] not in \
                [binds[i:i + 3] for i in range(0, len(binds), 3)]:
            binds += ["--ro-bind", os.path.dirname(real), os.path.dirname(real)]
    return binds


BWRAP = shutil.which("bwrap")
BWRAP_ARGS = None
if BWRAP:
    BWRAP_ARGS = [BWRAP, "--unshare-user", "--uid", "65534", "--gid", "65534",
                  "--unshare-pid", "--unshare-uts", "--unshare-ipc",
                  "--bind", root, "/"] + elf_binds(root + APP) + \
                 ["--proc", "/proc", "--tmpfs", "/tmp", "--chdir", "/",
                  "--die-with-parent", "--clearenv"]


def bwrap_once():
    """bwrap from fork to the app's hello on its channel."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    argv = BWRAP_ARGS + ["--setenv", "WARREN_CHANNEL_FD", str(b.fileno()), APP]
    t = time.perf_counter()
    p = subprocess.Popen(argv, pass_fds=(b.fileno(),), stdin=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    b.close()
    a.settimeout(10)
    try:
        hello = a.recv(65536)
    except socket.timeout:
        hello = b""
    ms = (time.perf_counter() - t) * 1000
    a.close()                    # the app's accept ends: it exits 0
    err = p.communicate(timeout=10)[1]
    if not hello:
        sys.exit("bwrap's app never said hello: %s" % err.decode(errors="replace"))
    return ms


def stats(v):
    v = sorted(v)
    return statistics.median(v), v[min(len(v) - 1, int(len(v) * 0.9))]


def line(name, v, note=""):
    med, p90 = stats(v)
    print("  %-44s median %6.2f ms   p90 %6.2f ms%s" % (name, med, p90, note))
    return med


results = {}
# plain generation (no isolation): what the control path itself costs
configure(1, isolated=False)
results["plain"] = [warren_once() for _ in range(rounds)]
# isolated generation with one worker, alternating with bwrap
configure(1)
results["warren"], results["bwrap"] = [], []
for _ in range(rounds):
    results["warren"].append(warren_once())
    if BWRAP:
        results["bwrap"].append(bwrap_once())
# the same with WORKERS workers: the extra ones are forks of the prototype
configure(workers)
results["many"] = [warren_once() for _ in range(rounds)]

print("== start latency, %d samples each, Warren and bwrap alternating" % rounds)
plain = line("warren, no isolation: restart -> ready", results["plain"])
w1 = line("warren, isolated generation + 1 worker", results["warren"])
if BWRAP:
    b1 = line("bwrap, the same sandbox: fork -> app ready", results["bwrap"])
wn = line("warren, isolated generation + %d workers" % workers, results["many"])
per = (wn - w1) / max(1, workers - 1)
print("== per isolated worker (medians)")
print("  %-44s %6.2f ms   (goal <= %.0f ms: %s)" % (
    "warren, each worker of an isolated app", per, goal, "met" if per <= goal else "NOT met"))
print("  %-44s %6.2f ms" % ("warren, the sandbox itself (isolated - plain)", w1 - plain))
if BWRAP:
    print("  %-44s %6.2f ms" % ("bwrap, each sandboxed process", b1))
    print("  %-44s %6.2f   (> 1: Warren faster)" % ("ratio bwrap / warren, per worker", b1 / per))
    print("  %-44s %6.2f   (> 1: Warren faster)" % ("ratio bwrap / warren, cold generation",
                                                      b1 / w1))
PYBENCH
echo "== done (stopping pids ${pids[*]})"

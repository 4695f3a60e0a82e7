#!/bin/bash
# bench/static.sh: static files, Warren vs nginx, same box, same files, same
# client; then the router's memory with 10,000 idle keep-alive connections.
# See bench/README.md. Run as root from anywhere: bench/static.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [64]  WRK_DURATION [5s]  IDLE_CONNS [10000]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-5s}
IDLE_CONNS=${IDLE_CONNS:-10000}
PY=/usr/bin/python3
NPROC=$(nproc)

# ---- 1. tools (Debian packages, only when missing)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    # Debian's postinst starts the packaged nginx: stop that one, it is not ours
    if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
        systemctl stop nginx || true
    fi
fi

echo "== building warrend"
make -C "$top" --no-print-directory build/warrend

# ---- 2. a private world in a temp dir
work=$(mktemp -d /tmp/warren-bench-XXXXXX)
chmod 755 "$work"
www="$work/www"
mkdir -p "$www" "$work/state" "$work/tmp" "$work/nginx"
head -c 1024 /dev/urandom > "$www/1k.bin"
head -c 102400 /dev/urandom > "$www/100k.bin"
chmod -R a+rX "$www"

. "$top/bench/common.sh"     # pids=(), cleanup on exit, free_port

WPORT=$(free_port)
NPORT=$(free_port)

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- 3. warrend
start_warrend "$work/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:$WPORT": {"pass": "routes"}},
 "routes": [{"action": {"share": "$www\$uri"}}],
 "settings": {"listen_threads": $NPROC,
              "http": {"idle_timeout": 600, "header_read_timeout": 60}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config)
case "$out" in *"Reconfiguration done"*) ;; *) echo "warrend refused the config: $out"; exit 1;; esac

router_pid() {
    for p in $(pgrep -P "$WPID"); do
        case "$(tr '\0' ' ' < /proc/$p/cmdline)" in "warren: router"*) echo "$p"; return;; esac
    done
}
RPID=$(router_pid)

# ---- 4. nginx (Debian's binary, our config)
start_nginx "$work/nginx" "
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NPORT reuseport;
        root $www;
    }"

for u in "http://127.0.0.1:$WPORT/1k.bin" "http://127.0.0.1:$NPORT/1k.bin"; do
    ok=
    for _ in $(seq 100); do
        if curl -sf -o /dev/null "$u"; then ok=1; break; fi
        sleep 0.05
    done
    [ -n "$ok" ] || { echo "not answering: $u"; exit 1; }
done
for f in 1k.bin 100k.bin; do
    cmp -s <(curl -sf "http://127.0.0.1:$WPORT/$f") "$www/$f" || { echo "warren: $f differs"; exit 1; }
    cmp -s <(curl -sf "http://127.0.0.1:$NPORT/$f") "$www/$f" || { echo "nginx: $f differs"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs; warrend $("$top/build/warrend" --version 2>&1 | head -1);" \
     "$(/usr/sbin/nginx -v 2>&1); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds, servers alternating;" \
     "both: $NPROC workers/threads, sendfile, keep-alive, no access log"

results="$work/results.txt"
: > "$results"
run_wrk() {   # server port file
    local out rps errs
    out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" "http://127.0.0.1:$2/$3" 2>&1)
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ')
    printf "  round %d  %-6s %-9s %12s req/s  %s\n" "$round" "$1" "$3" "${rps:-FAILED}" "$errs"
    echo "$1 $3 ${rps:-0}" >> "$results"
}
for round in $(seq "$ROUNDS"); do
    for f in 1k.bin 100k.bin; do
        if [ $((round % 2)) -eq 1 ]; then
            run_wrk warren "$WPORT" "$f"; run_wrk nginx "$NPORT" "$f"
        else
            run_wrk nginx "$NPORT" "$f"; run_wrk warren "$WPORT" "$f"
        fi
    done
done

echo "== medians (req/s)"
$PY - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    s, f, r = line.split()
    runs.setdefault((s, f), []).append(float(r))
for f in ("1k.bin", "100k.bin"):
    w = statistics.median(runs[("warren", f)])
    n = statistics.median(runs[("nginx", f)])
    print("  %-9s warren %10.0f   nginx %10.0f   warren/nginx %.2f" % (f, w, n, w / n if n else 0))
PY

# ---- 5. 10,000 idle keep-alive connections: router RSS
rss() { awk '/^VmRSS/ {print $2}' "/proc/$RPID/status"; }
echo "== idle keep-alive connections to warrend (router pid $RPID)"
before=$(rss)
$PY - "$WPORT" "$IDLE_CONNS" "$RPID" <<'PY'
import resource, socket, sys, time
port, n, rpid = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1000), hard))
req = b"GET /1k.bin HTTP/1.1\r\nHost: bench\r\n\r\n"
conns = []
t0 = time.monotonic()
for i in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req)
    got = b""
    while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + 1024:
        d = s.recv(65536)
        if not d:
            sys.exit("connection %d closed early" % i)
        got += d
    if not got.startswith(b"HTTP/1.1 200"):
        sys.exit("connection %d: %r" % (i, got[:100]))
    conns.append(s)
print("  opened %d connections, one request each, in %.1fs" % (n, time.monotonic() - t0))
time.sleep(1.0)
rss = [l.split()[1] for l in open("/proc/%s/status" % rpid) if l.startswith("VmRSS")][0]
fds = len(__import__("os").listdir("/proc/%s/fd" % rpid))
alive = 0
for s in conns:            # every one is still open (no EOF waiting)
    s.setblocking(False)
    try:
        alive += 0 if s.recv(1) == b"" else 0
    except BlockingIOError:
        alive += 1
print("  while idle: router RSS %s kB, router fds %d, still open %d" % (rss, fds, alive))
with open("/tmp/.warren-bench-idle-rss", "w") as f:
    f.write(rss)
for s in conns:
    s.close()
PY
during=$(cat /tmp/.warren-bench-idle-rss); rm -f /tmp/.warren-bench-idle-rss
sleep 1
after=$(rss)
status=$(curl -sS --unix-socket "$sock" http://localhost/status/connections)
echo "  router RSS: before ${before} kB, with $IDLE_CONNS idle ${during} kB" \
     "(+$(( (during - before) / 1024 )) MB), after closing ${after} kB"
echo "  /status/connections after closing: $status"
if [ "$during" -le $((25 * 1024)) ]; then
    echo "  goal <= 25 MB with $IDLE_CONNS idle connections: met"
else
    echo "  goal <= 25 MB with $IDLE_CONNS idle connections: NOT met"
fi
echo "== done (stopping warrend pid $WPID, nginx pid $NGPID)"

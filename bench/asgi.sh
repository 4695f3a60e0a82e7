#!/bin/bash
# bench/asgi.sh: the same hello-world (10 KB text/plain body) as an ASGI app
# and as a WSGI app, both served by one warrend, PROCESSES workers each, same
# client. See bench/README.md. Run as root from anywhere: bench/asgi.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]  PROCESSES [2]
#   SLEEP_MS [0]: each request first waits that long (asyncio.sleep in the
#   ASGI app, time.sleep in the WSGI one): an app waiting on I/O, where an
#   ASGI worker can serve several requests at once and a WSGI worker cannot
#   (unless THREADS is set)
#   THREADS [1]: "threads" of the WSGI app (each worker serves that many at once)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-2}
SLEEP_MS=${SLEEP_MS:-0}
THREADS=${THREADS:-1}
PY=/usr/bin/python3          # Debian's interpreter, whatever else is on PATH
NPROC=$(nproc)
BODY_LEN=10240

if ! command -v wrk >/dev/null; then
    echo "== installing wrk"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "   apt-get update failed; trying the install anyway"
    apt-get install -y -qq --no-install-recommends wrk >/dev/null || true
fi
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

. "$top/bench/common.sh"     # pids=(), cleanup on exit, free_port, start_warrend, bench_world, run_wrk
bench_world asgi
cat > "$app/hello_wsgi.py" <<PYAPP
import time

BODY = b"x" * $BODY_LEN
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]
SLEEP = $SLEEP_MS / 1000

def application(environ, start_response):
    if SLEEP:
        time.sleep(SLEEP)
    start_response("200 OK", HEADERS)
    return [BODY]
PYAPP
cat > "$app/hello_asgi.py" <<PYAPP
import asyncio

BODY = b"x" * $BODY_LEN
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"text/plain"),
                     (b"content-length", str(len(BODY)).encode())]}
END = {"type": "http.response.body", "body": BODY}
SLEEP = $SLEEP_MS / 1000

async def application(scope, receive, send):
    if scope["type"] != "http":
        return                  # no lifespan
    if SLEEP:
        await asyncio.sleep(SLEEP)
    await send(START)
    await send(END)
PYAPP
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=()
port[wsgi]=$(free_port)
port[asgi]=$(free_port)
start_warrend "$work/logs/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[wsgi]}": {"pass": "applications/wsgi"},
               "127.0.0.1:${port[asgi]}": {"pass": "applications/asgi"}},
 "applications": {
   "wsgi": {"type": "python", "path": "$app", "module": "hello_wsgi",
            "processes": $PROCESSES, "threads": $THREADS},
   "asgi": {"type": "python", "path": "$app", "module": "hello_asgi",
            "processes": $PROCESSES}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config 2>&1 || true)
case "$out" in
    *"Reconfiguration done"*) ;;
    *) echo "warrend refused the config: $out"; tail -5 "$work/logs/warren.log"; exit 1;;
esac
for s in wsgi asgi; do
    why=$(check_body "http://127.0.0.1:${port[$s]}/" "$BODY_LEN") \
        || { echo "$s does not answer the $BODY_LEN-byte body: $why"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs, $($PY --version); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== warrend $("$top/build/warrend" --version 2>&1 | head -1), $PROCESSES processes per app;" \
     "WSGI threads $THREADS; hello world, $BODY_LEN-byte body, SLEEP_MS=$SLEEP_MS; wrk -t$WRK_THREADS" \
     "-c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds alternating; no access log"

results="$work/results.txt"
: > "$results"
for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) = 1 ]; then run_wrk wsgi; run_wrk asgi; else run_wrk asgi; run_wrk wsgi; fi
done

echo "== medians (req/s)"
$PY - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    s, r = line.split()
    runs.setdefault(s, []).append(float(r))
med = {s: statistics.median(v) for s, v in runs.items()}
for s in ("wsgi", "asgi"):
    print("  %-5s %10.0f" % (s, med.get(s, 0)))
if med.get("wsgi"):
    print("  asgi/wsgi %.2f" % (med.get("asgi", 0) / med["wsgi"]))
PY
echo "== done (stopping pids ${pids[*]})"

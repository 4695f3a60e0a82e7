#!/bin/bash
# bench/wsgi.sh: one Python WSGI hello-world (10 KB text/plain body) served by
# Warren, uWSGI and gunicorn (sync workers), 2 worker processes each, same box,
# same app, same client. See bench/README.md. Run as root from anywhere:
# bench/wsgi.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]  PROCESSES [2]
#   UWSGI_MODES [http-socket http11-socket http]: uWSGI is run once per mode:
#               "uwsgi" closes every connection (--http-socket, how it is
#               usually benchmarked), "uwsgi-ka" keeps them (--http11-socket),
#               "uwsgi-router" is uWSGI's own HTTP router process in front of
#               its workers (--http: Warren's shape; closes every connection)
#   PIPELINE [unset: Warren's default, automatic]: the application's "pipeline"
#               (requests queued on a busy worker beyond the one it serves)
#   LISTEN_THREADS [unset: one per CPU]: Warren's settings.listen_threads
#   SCHEDULING [unset: Warren's default, batch]: the application's
#               "scheduling" (normal: the workers keep SCHED_OTHER)
#   CPU [1]: 0 skips the CPU-per-request runs; SYSCALLS [1]: 0 skips strace
#   BOUNDS [1]: 0 skips the three bounds: in the same warrend,
#               "warren-null" (the same hop to a C worker that does nothing,
#               bench/null_app.c: no Python at all) and "warren-static" (the
#               router sends the same 10 KB file itself: no hop); and
#               "nginx-static" (Debian's nginx sends that file: what a web
#               server with no application at all reaches on this machine)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-2}
UWSGI_MODES=${UWSGI_MODES:-http-socket http11-socket http}
PIPELINE=${PIPELINE:-}
LISTEN_THREADS=${LISTEN_THREADS:-}
SCHEDULING=${SCHEDULING:-}
BOUNDS=${BOUNDS:-1}
PY=/usr/bin/python3          # Debian's interpreter, whatever else is on PATH
NPROC=$(nproc)
BODY_LEN=10240
UWSGI_PLUGIN=/usr/lib/uwsgi/plugins/python3_plugin.so

# ---- 1. tools (Debian packages, only when missing; one at a time, so a peer
#         that cannot be installed is skipped rather than stopping the run)
. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/uwsgi ] || missing+=(uwsgi)
[ -f "$UWSGI_PLUGIN" ] || missing+=(uwsgi-plugin-python3)
$PY -c 'import gunicorn' 2>/dev/null || missing+=(python3-gunicorn)
[ "$BOUNDS" != 1 ] || [ -x /usr/sbin/nginx ] || missing+=(nginx)
install_missing "${missing[@]}"   # (uwsgi's init script is not used)
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

# ---- 2. a private world in a temp dir
bench_world wsgi
cat > "$app/app.py" <<PYAPP
BODY = b"x" * $BODY_LEN
HEADERS = [("Content-Type", "text/plain"), ("Content-Length", str(len(BODY)))]

def application(environ, start_response):
    start_response("200 OK", HEADERS)
    return [BODY]
PYAPP
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() pid=() desc=()
servers=()
skip() { echo "== SKIPPED $1: $2 (continuing with the others)"; }

# ---- 3. Warren
WPORT=$(free_port)
start_warrend "$work/logs/warren.log"
pipeline_key=${PIPELINE:+"\"pipeline\": $PIPELINE,"}
scheduling_key=${SCHEDULING:+"\"scheduling\": \"$SCHEDULING\","}
settings_key=${LISTEN_THREADS:+"\"settings\": {\"listen_threads\": $LISTEN_THREADS},"}
bound_listeners="" bound_apps=""
if [ "$BOUNDS" = 1 ]; then
    # The same warrend, two more listeners: the hop to a worker with no
    # runtime in it, and no hop at all (idle while the others are measured).
    make -C "$top" --no-print-directory build/bench/null_app
    cp "$top/build/bench/null_app" "$work/null_app"      # where nobody can run it
    mkdir -p "$work/static"
    $PY -c "import sys; sys.stdout.buffer.write(b'x' * $BODY_LEN)" > "$work/static/index.html"
    chmod -R a+rX "$work/null_app" "$work/static"
    NPORT=$(free_port) SPORT=$(free_port)
    bound_listeners=",\"127.0.0.1:$NPORT\": {\"pass\": \"applications/null\"},
                     \"127.0.0.1:$SPORT\": {\"pass\": \"routes/static\"}"
    bound_apps=",\"null\": {\"type\": \"external\", \"executable\": \"$work/null_app\",
                          $pipeline_key $scheduling_key \"processes\": $PROCESSES}"
    bound_routes="\"routes\": {\"static\": [{\"action\": {\"share\": \"$work/static\$uri\"}}]},"
fi
conf=$(cat <<JSON
{$settings_key ${bound_routes:-}
 "listeners": {"127.0.0.1:$WPORT": {"pass": "applications/py"} $bound_listeners},
 "applications": {"py": {"type": "python", "path": "$app", "module": "app",
                         $pipeline_key $scheduling_key
                         "processes": $PROCESSES} $bound_apps}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config 2>&1 || true)
case "$out" in
    *"Reconfiguration done"*)
        if why=$(check_body "http://127.0.0.1:$WPORT/" "$BODY_LEN"); then
            servers+=(warren); port[warren]=$WPORT; pid[warren]=$WPID
            desc[warren]="warrend $("$top/build/warrend" --version 2>&1 | head -1), $PROCESSES processes, pipeline ${PIPELINE:-automatic (default)}, scheduling ${SCHEDULING:-batch (default)}, listen_threads ${LISTEN_THREADS:-one per CPU}"
        else
            skip warren "not answering 200 with the $BODY_LEN-byte body: $why"
            tail -5 "$work/logs/warren.log" | sed 's/^/   /'
        fi;;
    *) skip warren "refused the config: $out";;
esac
if [ "$BOUNDS" = 1 ] && [ -n "${port[warren]:-}" ]; then
    for b in "warren-null:$NPORT:the same hop to $PROCESSES libwarren C workers that do nothing (bench/null_app.c)" \
             "warren-static:$SPORT:the router sends the same body as a static file (share), no worker"; do
        IFS=: read -r name bport what <<<"$b"
        if why=$(check_body "http://127.0.0.1:$bport/" "$BODY_LEN"); then
            servers+=("$name"); port[$name]=$bport; pid[$name]=$WPID
            desc[$name]="the same warrend: $what"
        else
            skip "$name" "not answering 200 with the $BODY_LEN-byte body: $why"
        fi
    done
fi
if [ "$BOUNDS" = 1 ] && [ -x /usr/sbin/nginx ]; then
    XPORT=$(free_port)
    # sendfile off: for a 10 KB file a plain write is faster here
    # (~46k against ~32k req/s): the bound is nginx at its best.
    start_nginx "$work/nginx" "
    sendfile off;
    server {
        listen 127.0.0.1:$XPORT reuseport;
        root $work/static;
    }"
    if why=$(check_body "http://127.0.0.1:$XPORT/" "$BODY_LEN"); then
        servers+=(nginx-static); port[nginx-static]=$XPORT; pid[nginx-static]=$NGPID
        desc[nginx-static]="$(/usr/sbin/nginx -v 2>&1), $NPROC workers, the same file (keep-alive, sendfile off)"
    else
        skip nginx-static "not answering 200 with the $BODY_LEN-byte body: $why"
    fi
fi

# ---- 4. uWSGI (Debian's binary and python3 plugin), once per socket mode
for mode in $UWSGI_MODES; do
    case $mode in
        http11-socket) name=uwsgi-ka;;
        http) name=uwsgi-router;;
        *) name=uwsgi;;
    esac
    if [ ! -x /usr/bin/uwsgi ] || [ ! -f "$UWSGI_PLUGIN" ]; then
        skip "$name" "uwsgi or uwsgi-plugin-python3 is not installed"
        continue
    fi
    UPORT=$(free_port)
    plugins=python3
    [ "$mode" = http ] && plugins=python3,http  # Debian builds the router as a plugin
    /usr/bin/uwsgi --plugin "$plugins" --"$mode" "127.0.0.1:$UPORT" \
        --master --processes "$PROCESSES" --die-on-term --disable-logging \
        --chdir "$app" --module app:application --pidfile "$work/$name.pid" \
        </dev/null >"$work/logs/$name.log" 2>&1 &
    UPID=$!
    pids+=("$UPID")
    if why=$(check_body "http://127.0.0.1:$UPORT/" "$BODY_LEN"); then
        servers+=("$name"); port[$name]=$UPORT; pid[$name]=$UPID
        desc[$name]="uWSGI $(/usr/bin/uwsgi --version), --$mode, $PROCESSES processes"
    else
        skip "$name" "not answering 200 with the $BODY_LEN-byte body: $why"
        tail -5 "$work/logs/$name.log" | sed 's/^/   /'
    fi
done

# ---- 5. gunicorn (Debian's python3-gunicorn), sync workers, no access log
if $PY -c 'import gunicorn' 2>/dev/null; then
    GPORT=$(free_port)
    $PY -m gunicorn --bind "127.0.0.1:$GPORT" --workers "$PROCESSES" \
        --worker-class sync --chdir "$app" --error-logfile "$work/logs/gunicorn.log" \
        app:application </dev/null >/dev/null 2>&1 &
    GPID=$!
    pids+=("$GPID")
    if why=$(check_body "http://127.0.0.1:$GPORT/" "$BODY_LEN"); then
        servers+=(gunicorn); port[gunicorn]=$GPORT; pid[gunicorn]=$GPID
        desc[gunicorn]="gunicorn $($PY -c 'import gunicorn; print(gunicorn.__version__)') sync, $PROCESSES workers"
    else
        skip gunicorn "not answering 200 with the $BODY_LEN-byte body: $why"
        tail -5 "$work/logs/gunicorn.log" | sed 's/^/   /'
    fi
else
    skip gunicorn "python3-gunicorn is not installed"
fi

[ ${#servers[@]} -gt 0 ] || { echo "no server could be started; nothing measured"; exit 1; }

echo "== $(uname -r), $NPROC CPUs, $($PY --version); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
for s in "${servers[@]}"; do echo "   $s: ${desc[$s]} (pid ${pid[$s]}, port ${port[$s]})"; done
echo "== app: WSGI hello world, $BODY_LEN-byte text/plain body; wrk -t$WRK_THREADS" \
     "-c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds, servers alternating; no access logs"
echo "   keep-alive: warren yes; uwsgi-ka yes; gunicorn sync no (it sends Connection: close);" \
     "uwsgi no: --http-socket closes after every response without Connection: close, so wrk" \
     "counts each close as a read socket error (the responses are complete); uwsgi-router no" \
     "(its --http-keepalive stalls ~40 ms per request here, so it is not used)"

results="$work/results.txt"
: > "$results"
n=${#servers[@]}
for round in $(seq "$ROUNDS"); do
    for i in $(seq 0 $((n - 1))); do          # rotate the order each round
        run_wrk "${servers[$(( (i + round - 1) % n ))]}"
    done
done

echo "== medians (req/s)"
$PY - "$results" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    s, r = line.split()
    runs.setdefault(s, []).append(float(r))
med = {s: statistics.median(v) for s, v in runs.items()}
for s in ("warren", "uwsgi", "uwsgi-ka", "uwsgi-router", "gunicorn", "warren-null",
          "warren-static", "nginx-static"):
    if s.endswith(("-null", "-static")) and s not in med:
        continue
    print("  %-13s %10s" % (s, "%.0f" % med[s] if s in med else "not measured"))
# uWSGI's goal holds against both of its modes; the keep-alive one is the
# like-for-like comparison (Warren keeps connections too).
goals = {"uwsgi": 2.0, "uwsgi-ka": 2.0, "gunicorn": 3.0}
for peer, goal in goals.items():
    if "warren" in med and peer in med and med[peer] > 0:
        r = med["warren"] / med[peer]
        print("  warren/%-8s %.2f   (goal >= %.0fx: %s)" % (peer, r, goal, "met" if r >= goal else "NOT met"))
    else:
        print("  warren/%-8s n/a    (goal >= %.0fx: not measured)" % (peer, goal))
# The bounds: what the same router reaches with no Python behind the hop,
# with no hop at all, and what nginx reaches sending the body as a file. The
# goal against uWSGI needs Warren's Python app to reach 2x: where the hop
# alone (warren-null) cannot, no runtime can; where no web server with no
# application at all (nginx-static) can, no application server can.
for b, what in (("warren-null", "no Python: the hop to a C worker doing nothing"),
                ("warren-static", "no hop: the router alone"),
                ("nginx-static", "no application: nginx sends the file")):
    if b in med and med.get("uwsgi", 0) > 0:
        print("  bound %-13s %.2fx uwsgi, %s   (%s)" % (b, med[b] / med["uwsgi"],
              "%.2fx uwsgi-ka" % (med[b] / med["uwsgi-ka"]) if med.get("uwsgi-ka") else "",
              what))
if "warren" in med and med.get("uwsgi-router", 0) > 0:
    print("  warren/uwsgi-router %.2f   (uWSGI's own router in front of its workers; no goal)"
          % (med["warren"] / med["uwsgi-router"]))
PY
# ---- 7. CPU time per request of each server's processes (utime + stime from
#         /proc, all threads), during one more wrk run each: what a server
#         costs whatever else shares the CPUs. Warren is split into its router
#         and its application processes (prototype and workers), the part the
#         issue's "same number of processes" counts.
tree_of() {                    # $1 and every descendant, one pid per line
    local p=$1
    echo "$p"
    for c in $(ps -o pid= --ppid "$p"); do tree_of "$c"; done
}
ticks_of() {                   # utime + stime of the pids given, in clock ticks
    local sum=0 p f
    for p in "$@"; do
        f=$(cut -d')' -f2- "/proc/$p/stat" 2>/dev/null) || continue
        sum=$((sum + $(awk '{print $12 + $13}' <<<"$f")))
    done
    echo "$sum"
}
if [ "${CPU:-1}" = 1 ]; then
    HZ=$(getconf CLK_TCK)
    echo "== CPU per request (µs of CPU, all threads; wrk -t$WRK_THREADS -c$WRK_CONNS -d5s on each)"
    for s in "${servers[@]}"; do
        mapfile -t all < <(tree_of "${pid[$s]}")
        groups=("$s:${all[*]}")
        if [ "$s" = warren ]; then
            router=$(ps -o pid=,args= --ppid "${pid[$s]}" | awk '/warren: router/ {print $1}')
            apps=()
            for p in $(ps -o pid=,args= --ppid "${pid[$s]}" | awk '/prototype/ {print $1}'); do
                mapfile -t -O "${#apps[@]}" apps < <(tree_of "$p")
            done
            groups=("warren router:$router" "warren app processes:${apps[*]}")
        fi
        declare -A before=()
        for g in "${groups[@]}"; do before[$g]=$(ticks_of ${g#*:}); done
        out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d5s "http://127.0.0.1:${port[$s]}/" 2>&1 || true)
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
        for g in "${groups[@]}"; do
            after=$(ticks_of ${g#*:})
            awk -v n="${g%%:*}" -v t=$((after - ${before[$g]})) -v hz="$HZ" -v r="${reqs:-0}" \
                -v f="$work/cpu.txt" \
                'BEGIN { if (r > 0) { us = t * 1e6 / hz / r
                         printf "  %-22s %6.1f µs  (%d requests)\n", n, us, r
                         printf "%s\t%f\n", n, us >> f } }'
        done
        unset before
    done
    # What bounds the ratio: the app processes alone (no router at all)
    # against each peer's whole server, and what one system call costs here
    # (the router's hop is a few of them per request).
    cat > "$work/nullcall.c" <<'NC'
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(void)
{
    struct timespec a, b;
    long n = 1000000;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++)
        syscall(SYS_getppid);
    clock_gettime(CLOCK_MONOTONIC, &b);
    printf("%.2f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n / 1000);
    return 0;
}
NC
    nullcall=""
    cc -O2 -o "$work/nullcall" "$work/nullcall.c" 2>/dev/null && nullcall=$("$work/nullcall")
    $PY - "$work/cpu.txt" "$nullcall" <<'PYB'
import sys
cpu = dict((n, float(v)) for n, v in (l.rstrip("\n").split("\t") for l in open(sys.argv[1])))
app, router = cpu.get("warren app processes"), cpu.get("warren router")
if app and router:
    print("== what bounds the ratio (CPU per request, from the figures above)")
    print("  warren: %.1f µs = router %.1f + app processes %.1f" % (app + router, router, app))
    for peer in ("uwsgi", "uwsgi-ka", "gunicorn"):
        if cpu.get(peer):
            print("  %-9s %6.1f µs: peer/warren %.2f; with a router that cost nothing %.2f"
                  " (the most the ratio can reach where the CPUs are the limit)"
                  % (peer, cpu[peer], cpu[peer] / (app + router), cpu[peer] / app))
if sys.argv[2]:
    print("  a null system call (getppid) costs %s µs on this machine" % sys.argv[2])
PYB
fi

# ---- 8. Warren's system calls per request: strace -c on the router (all its
#         threads) and on the workers, during a short fixed wrk run (strace
#         slows everything down: only the counts mean something here)
if [ -n "${port[warren]:-}" ] && [ "${SYSCALLS:-1}" = 1 ] && command -v strace >/dev/null; then
    router=$(ps -o pid=,args= --ppid "$WPID" | awk '/warren: router/ {print $1}')
    workers=()
    for p in $(ps -o pid= --ppid "$WPID"); do
        for w in $(ps -o pid= --ppid "$p"); do workers+=(-p "$w"); done
    done
    if [ -n "$router" ] && [ ${#workers[@]} -gt 0 ]; then
        strace -c -f -o "$work/strace.router" -p "$router" 2>/dev/null & s1=$!
        strace -c -f -o "$work/strace.workers" "${workers[@]}" 2>/dev/null & s2=$!
        sleep 1
        out=$(wrk -t1 -c"$WRK_CONNS" -d3s "http://127.0.0.1:${port[warren]}/" 2>&1 || true)
        kill -INT "$s1" "$s2"; wait "$s1" "$s2" 2>/dev/null || true
        reqs=$(awk '/requests in/ {print $1}' <<<"$out")
        echo "== warren system calls per request (strace -c -f, wrk -t1 -c$WRK_CONNS -d3s: $reqs requests)"
        for part in router workers; do
            $PY - "$work/strace.$part" "$reqs" "$part" <<'PYSC'
import sys
path, reqs, part = sys.argv[1], int(sys.argv[2] or 0), sys.argv[3]
calls = {}
for line in open(path):
    f = line.split()
    if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
        calls[f[-1]] = int(f[3])
if reqs <= 0:
    print("  %-8s no requests measured" % part)
    sys.exit(0)
total = sum(calls.values())
top = sorted(calls.items(), key=lambda kv: -kv[1])[:6]
print("  %-8s %5.1f per request: %s" % (part, total / reqs, ", ".join(
    "%s %.2f" % (k, v / reqs) for k, v in top)))
PYSC
        done
    fi
fi

echo "== done (stopping pids ${pids[*]})"

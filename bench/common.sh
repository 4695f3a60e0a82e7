# bench/common.sh: what the bench scripts share. Source it with `top` set
# (the checkout); it defines `pids` (add every server you start) and, on
# exit, stops them all, by pid, and removes `work` (the run's temp dir).

pids=()

# apt-get install each Debian package named, one at a time: one that cannot
# be installed is reported and the others still come.
install_missing() {
    [ $# -gt 0 ] || return 0
    echo "== installing $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || echo "   apt-get update failed; trying the install anyway"
    for p in "$@"; do
        apt-get install -y -qq --no-install-recommends "$p" >/dev/null \
            || echo "   could not install $p"
    done
}

cleanup() {
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$p" 2>/dev/null || true
    done
    [ -n "${work:-}" ] && rm -rf "$work"
}
trap cleanup EXIT

# A free loopback port, never the same twice in one run.
declare -A used_ports=()
free_port() {
    local p
    while :; do
        p=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        [ -z "${used_ports[$p]:-}" ] && { used_ports[$p]=1; echo "$p"; return; }
    done
}

# Start warrend in the foreground on $work (control socket $sock); sets WPID
# and waits until the control socket exists. $1: the error log path.
start_warrend() {
    sock="$work/control.sock"
    "$top/build/warrend" --no-daemon --control "unix:$sock" --statedir "$work/state" \
        --pid "$work/warren.pid" --log "$1" --tmpdir "$work/tmp" \
        </dev/null >/dev/null 2>&1 &
    WPID=$!
    pids+=("$WPID")
    for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
}

# PUTs the config $1 on the control socket start_warrend made: Warren is
# added to the caller's `servers`, or reported skipped with the answer.
warren_apply() {
    local out
    out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$1" http://localhost/config 2>&1 || true)
    case "$out" in
        *"Reconfiguration done"*) servers+=(warren);;
        *) echo "== SKIPPED warren: refused the config: $out";;
    esac
}

# uWSGI with the language plugin $1 and its app arguments ($2...), twice:
# "uwsgi" closes every connection (--http-socket), "uwsgi-ka" keeps them
# (--http11-socket), PROCESSES workers each, on port[uwsgi] and
# port[uwsgi-ka]; both added to `servers` (and `pids`). Skipped with a line
# when uwsgi or the plugin is not installed.
start_uwsgi_modes() {
    local plugin=$1 mode sockopt
    shift
    if [ ! -x /usr/bin/uwsgi ] || [ ! -f "/usr/lib/uwsgi/plugins/${plugin}_plugin.so" ]; then
        echo "== SKIPPED uwsgi: uwsgi or its $plugin plugin is not installed"
        return
    fi
    for mode in uwsgi uwsgi-ka; do
        sockopt=--http-socket
        [ "$mode" = uwsgi-ka ] && sockopt=--http11-socket
        /usr/bin/uwsgi --plugin "$plugin" "$sockopt" "127.0.0.1:${port[$mode]}" --master \
            --processes "$PROCESSES" --die-on-term --disable-logging "$@" \
            </dev/null >"$work/logs/$mode.log" 2>&1 &
        pids+=($!)
        servers+=("$mode")
    done
}

# Builds warrend and the runtimes, then makes the run's private world:
# work (a temp dir named after $1), app (its application directory), and
# the directories start_warrend gives warrend.
bench_world() {
    echo "== building warrend, warren-python and warren-php"
    make -C "$top" --no-print-directory build/warrend build/warren-python build/warren-php
    work=$(mktemp -d "/tmp/warren-$1-bench-XXXXXX")
    chmod 755 "$work"
    app="$work/app"
    mkdir -p "$app" "$work/state" "$work/tmp" "$work/logs"
}

# One wrk run against port[$1] (the caller's associative array `port`),
# path $2 (default /), then wrk's own arguments ($3...: -H "Connection:
# close"), printed as a round line (with wrk's error counts) and appended to
# $results as "NAME REQ_PER_SEC". Uses WRK_THREADS, WRK_CONNS,
# WRK_DURATION, the caller's `round` and `scheme` (default http).
run_wrk() {
    local out rps errs
    out=$(wrk -t"$WRK_THREADS" -c"$WRK_CONNS" -d"$WRK_DURATION" "${@:3}" \
              "${scheme:-http}://127.0.0.1:${port[$1]}${2:-/}" 2>&1 || true)
    rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
    errs=$(awk '/Non-2xx|Socket errors/ {print}' <<<"$out" | tr '\n' ' ' | sed 's/  */ /g')
    printf "  round %d  %-13s %12s req/s  %s\n" "$round" "$1" "${rps:-FAILED}" "$errs"
    echo "$1 ${rps:-0}" >> "$results"
}

# Keeps in `servers` those that answer path $1 with the $BODY_LEN-byte body
# (check_body); the others are reported skipped.
keep_answering() {
    local ok=() s why
    for s in "${servers[@]}"; do
        if why=$(check_body "http://127.0.0.1:${port[$s]}${1:-/}" "$BODY_LEN"); then
            ok+=("$s")
        else
            echo "== SKIPPED $s: does not answer the $BODY_LEN-byte body: $why"
        fi
    done
    servers=("${ok[@]}")
}

# ROUNDS rounds of run_wrk against each of the caller's `servers` (path $1,
# wrk's own arguments after it), the order turning by one every round, into
# a fresh $results; then each server's median, printed and kept in the
# caller's associative array `med`.
rounds_and_medians() {
    local order=("${servers[@]}") s
    results="$work/results.txt"
    : > "$results"
    for round in $(seq "$ROUNDS"); do
        for s in "${order[@]}"; do run_wrk "$s" "$@"; done
        order=("${order[@]:1}" "${order[0]}")
    done
    echo "== medians (req/s)"
    for s in "${servers[@]}"; do
        med[$s]=$(median_of "$s")
        printf "  %-9s %10s
" "$s" "${med[$s]}"
    done
}

# "warren/PEER RATIO" for each peer named that has a median (med).
warren_ratios() {
    local s
    for s in "$@"; do
        awk -v w="${med[warren]:-0}" -v p="${med[$s]:-0}" -v n="$s" 'BEGIN {
            if (w > 0 && p > 0) printf "  warren/%-9s %.2f\n", n, w / p
        }'
    done
}

# URL $1 answers 200 with exactly $2 bytes of "x", waiting up to ~10 s for a
# server to start; on failure prints what it got instead.
check_body() {
    /usr/bin/python3 - "$1" "$2" <<'PYCHK'
import sys, time, urllib.request
url, n = sys.argv[1], int(sys.argv[2])
last = "no answer"
for _ in range(100):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            body = r.read()
            if r.status == 200 and body == b"x" * n:
                sys.exit(0)
            last = "status %d, %d bytes" % (r.status, len(body))
            break
    except Exception as e:
        last = str(e)
    time.sleep(0.1)
print(last)
sys.exit(1)
PYCHK
}

# The median req/s of server $1 among the runs in $results (run_wrk's), 0
# when it has none.
median_of() {
    /usr/bin/python3 - "$results" "$1" <<'PY'
import statistics, sys
v = [float(r) for s, r in (line.split() for line in open(sys.argv[1])) if s == sys.argv[2]]
print("%.0f" % statistics.median(v) if v else 0)
PY
}

# Writes $1/nginx.conf: Debian's nginx as the benches run it (NPROC
# workers as nobody, no access log, keep-alive that never closes during a
# run, every temp path under $1), with $2 added inside http {} (upstreams,
# the server block) and $3 at the top (load_module lines); then starts it in
# the foreground and adds it to pids.
start_nginx() {
    mkdir -p "$1"
    cat > "$1/nginx.conf" <<NGINX
${3:-}
worker_processes $NPROC;
user nobody nogroup;
pid $1/nginx.pid;
error_log $1/error.log warn;
daemon off;
events { worker_connections 16384; }
http {
    access_log off;
    keepalive_timeout 600;
    keepalive_requests 1000000;
    client_body_temp_path $1/body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
$2
}
NGINX
    /usr/sbin/nginx -c "$1/nginx.conf" -p "$1" </dev/null >/dev/null 2>&1 &
    NGPID=$!
    pids+=("$NGPID")
}

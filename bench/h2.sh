#!/bin/bash
# bench/h2.sh: HTTP/2 (cleartext, prior knowledge), Warren vs nginx, same box,
# same files, same client (h2load); Warren over HTTP/1.1 in the same run, for
# what the second protocol costs. See bench/README.md. Run as root: bench/h2.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  REQUESTS [200000]  CLIENTS [16]  STREAMS [10] (per connection)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-200000}
CLIENTS=${CLIENTS:-16}
STREAMS=${STREAMS:-10}
PY=/usr/bin/python3
NPROC=$(nproc)

. "$top/bench/common.sh"     # pids=(), cleanup on exit, free_port, start_*

# ---- 1. tools (Debian packages, only when missing)
missing=()
command -v h2load >/dev/null || missing+=(nghttp2-client)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
install_missing "${missing[@]}"
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true         # Debian's postinst starts its own
fi

echo "== building warrend"
make -C "$top" --no-print-directory build/warrend

# ---- 2. a private world
work=$(mktemp -d /tmp/warren-h2-bench-XXXXXX)
chmod 755 "$work"
www="$work/www"
mkdir -p "$www" "$work/state" "$work/tmp" "$work/nginx"
head -c 1024 /dev/urandom > "$www/1k.bin"
head -c 102400 /dev/urandom > "$www/100k.bin"
chmod -R a+rX "$www"
WPORT=$(free_port)
NPORT=$(free_port)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# ---- 3. warrend with HTTP/2 on, and nginx with http2 on a cleartext port
start_warrend "$work/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:$WPORT": {"pass": "routes"}},
 "routes": [{"action": {"share": "$www\$uri"}}],
 "settings": {"listen_threads": $NPROC,
              "http": {"http2": true, "idle_timeout": 600}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config)
case "$out" in *"Reconfiguration done"*) ;; *) echo "warrend refused the config: $out"; exit 1;; esac

start_nginx "$work/nginx" "
    sendfile on;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:$NPORT http2 reuseport;
        root $www;
    }"

for u in "http://127.0.0.1:$WPORT/1k.bin" "http://127.0.0.1:$NPORT/1k.bin"; do
    ok=
    for _ in $(seq 100); do
        if curl -sf --http2-prior-knowledge -o /dev/null "$u"; then ok=1; break; fi
        sleep 0.05
    done
    [ -n "$ok" ] || { echo "not answering over HTTP/2: $u"; exit 1; }
done
for f in 1k.bin 100k.bin; do
    for p in "$WPORT" "$NPORT"; do
        cmp -s <(curl -sf --http2-prior-knowledge "http://127.0.0.1:$p/$f") "$www/$f" \
            || { echo "port $p: $f differs over HTTP/2"; exit 1; }
    done
done

echo "== $(uname -r), $NPROC CPUs; warrend $("$top/build/warrend" --version 2>&1 | head -1);" \
     "$(/usr/sbin/nginx -v 2>&1); $(h2load --version 2>&1 | head -1)"
echo "== h2load -n$REQUESTS -c$CLIENTS -m$STREAMS -t1, $ROUNDS rounds, servers alternating;" \
     "both: $NPROC workers/threads, no access log; warren-h1: the same over HTTP/1.1 (h2load --h1)"

results="$work/results.txt"
: > "$results"
run_h2load() {   # label port file [extra h2load args]
    local out rps failed
    out=$(h2load -n"$REQUESTS" -c"$CLIENTS" -m"$STREAMS" -t1 "${@:4}" \
          "http://127.0.0.1:$2/$3" 2>&1)
    rps=$(awk '/^finished in/ {print $4}' <<<"$out")
    failed=$(awk '/^requests:/ {print $10}' <<<"$out")
    printf "  round %d  %-9s %-9s %12s req/s  failed %s\n" "$round" "$1" "$3" \
        "${rps:-FAILED}" "${failed:-?}"
    echo "$1 $3 ${rps:-0}" >> "$results"
}
for round in $(seq "$ROUNDS"); do
    for f in 1k.bin 100k.bin; do
        if [ $((round % 2)) -eq 1 ]; then
            run_h2load warren "$WPORT" "$f"; run_h2load nginx "$NPORT" "$f"
        else
            run_h2load nginx "$NPORT" "$f"; run_h2load warren "$WPORT" "$f"
        fi
        run_h2load warren-h1 "$WPORT" "$f" --h1
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
    h1 = statistics.median(runs[("warren-h1", f)])
    print("  %-9s warren h2 %9.0f   nginx h2 %9.0f   warren/nginx %.2f   warren h1 %9.0f"
          % (f, w, n, w / n if n else 0, h1))
PY

#!/bin/bash
# bench/njs.sh: JavaScript in the configuration, Warren's template literals
# (SpiderMonkey) vs nginx's njs (js_set), same box, same answer, same client;
# and the same value from plain variables on both, for what the JavaScript
# costs. See bench/README.md. Run as root: bench/njs.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [64]  WRK_DURATION [5s]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-64}
WRK_DURATION=${WRK_DURATION:-5s}
NPROC=$(nproc)
NJS_MODULE=/usr/lib/nginx/modules/ngx_http_js_module.so

. "$top/bench/common.sh"     # pids=(), cleanup on exit, free_port, start_*

# ---- 1. tools (Debian packages, only when missing)
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -f "$NJS_MODULE" ] || missing+=(libnginx-mod-http-js)
install_missing "${missing[@]}"
if command -v systemctl >/dev/null && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true         # Debian's postinst starts its own
fi

echo "== building warrend"
make -C "$top" --no-print-directory build/warrend

# ---- 2. a private world
work=$(mktemp -d /tmp/warren-njs-bench-XXXXXX)
chmod 755 "$work"
mkdir -p "$work/state" "$work/tmp" "$work/nginx"
declare -A port=()
for s in warren-var warren-js nginx-var nginx-njs; do port[$s]=$(free_port); done

# Every server answers 200 "ok" with X-T: "<host>-<argument x>" (the host
# without its port), from variables or from JavaScript.
start_warrend "$work/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren-var]}": {"pass": "routes/var"},
               "127.0.0.1:${port[warren-js]}": {"pass": "routes/js"}},
 "routes": {"var": [{"action": {"return": 200, "response_headers": {"X-T": "\$host-\$arg_x"}}}],
            "js": [{"action": {"return": 200, "response_headers": {"X-T": "\`\${host}-\${args.x}\`"}}}]},
 "settings": {"listen_threads": $NPROC, "http": {"idle_timeout": 600}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config)
case "$out" in *"Reconfiguration done"*) ;; *) echo "warrend refused the config: $out"; exit 1;; esac

cat > "$work/nginx/t.js" <<'JS'
function t(r) { return r.headersIn.Host.split(':')[0] + '-' + r.args.x; }
export default { t };
JS
start_nginx "$work/nginx" "
    js_import main from $work/nginx/t.js;
    js_set \$t main.t;
    server {
        listen 127.0.0.1:${port[nginx-var]} reuseport;
        location / { add_header X-T \"\$host-\$arg_x\"; return 200 ok; }
    }
    server {
        listen 127.0.0.1:${port[nginx-njs]} reuseport;
        location / { add_header X-T \$t; return 200 ok; }
    }" "load_module $NJS_MODULE;"

servers=(warren-var warren-js nginx-var nginx-njs)
for s in "${servers[@]}"; do
    got=
    for _ in $(seq 100); do
        got=$(curl -sf -D - -o /dev/null "http://127.0.0.1:${port[$s]}/p?x=42" 2>/dev/null \
              | tr -d '\r' | awk -F': ' 'tolower($1) == "x-t" {print $2}') && [ -n "$got" ] && break
        sleep 0.05
    done
    [ "$got" = "127.0.0.1-42" ] || { echo "$s answers X-T \"$got\", not 127.0.0.1-42"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs; $(/usr/sbin/nginx -v 2>&1), njs $(dpkg-query -W -f='${Version}' libnginx-mod-http-js 2>/dev/null)"
echo "== wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION /p?x=42, $ROUNDS rounds, order rotating;" \
     "both: $NPROC workers/threads, keep-alive, no access log"
results="$work/results.txt"
: > "$results"
for round in $(seq "$ROUNDS"); do
    n=${#servers[@]}
    for i in $(seq 0 $((n - 1))); do
        run_wrk "${servers[$(( (i + round) % n ))]}" "/p?x=42"
    done
done

echo "== medians (req/s)"
declare -A med=()
for s in "${servers[@]}"; do med[$s]=$(median_of "$s"); printf "  %-11s %10s\n" "$s" "${med[$s]}"; done
ratio() { /usr/bin/python3 -c "import sys; a, b = float(sys.argv[1]), float(sys.argv[2]); print('%.2f' % (a / b) if b else '-')" "$1" "$2"; }
echo "  warren-js / nginx-njs   $(ratio "${med[warren-js]}" "${med[nginx-njs]}")   (JavaScript against JavaScript)"
echo "  warren-var / nginx-var  $(ratio "${med[warren-var]}" "${med[nginx-var]}")   (variables against variables)"
echo "  warren-js / warren-var  $(ratio "${med[warren-js]}" "${med[warren-var]}")   (what the template costs Warren)"
echo "  nginx-njs / nginx-var   $(ratio "${med[nginx-njs]}" "${med[nginx-var]}")   (what njs costs nginx)"

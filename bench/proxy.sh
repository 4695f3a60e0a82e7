#!/bin/bash
# bench/proxy.sh: the "proxy" action in front of one Node.js HTTP server on
# loopback TCP (1 KB answers), Warren without and with
# settings.http.proxy_keepalive against nginx's proxy_pass with upstream
# keep-alive, and the server alone; wrk alternately in one run. See
# bench/README.md. As root: bench/proxy.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]
#   KEEPALIVE [32]: Warren's proxy_keepalive and nginx's upstream keepalive
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
KEEPALIVE=${KEEPALIVE:-32}
NPROC=$(nproc)
BODY_LEN=1024

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
install_missing "${missing[@]}"
# Debian's postinst starts the packaged nginx: that one is not ours
if [ ${#missing[@]} -gt 0 ] && command -v systemctl >/dev/null \
   && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true
fi
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }
command -v node >/dev/null || { echo "node is not available; no upstream to proxy to"; exit 1; }
NODE=$(command -v node)

bench_world proxy
cat > "$app/server.js" <<JS
const http = require("http");
const body = Buffer.alloc($BODY_LEN, "x");
http.createServer((req, res) => {
    res.writeHead(200, {"Content-Type": "text/plain", "Content-Length": body.length});
    res.end(body);
}).listen(Number(process.argv[2]), "127.0.0.1");
JS

declare -A port=() med=()
for s in up close kept nginx; do port[$s]=$(free_port); done
port[node]=${port[up]}
"$NODE" "$app/server.js" "${port[up]}" </dev/null >/dev/null 2>&1 &
pids+=($!)

# Warren: two listeners, each with its own route; proxy_keepalive is a
# setting, so the "close" one runs in a second warrend.
up="http://127.0.0.1:${port[up]}"
start_warrend "$work/logs/warren.log"
sock_kept=$sock
conf_of() {
    echo "{\"settings\": {\"http\": {\"proxy_keepalive\": $2}},
           \"listeners\": {\"127.0.0.1:$1\": {\"pass\": \"routes\"}},
           \"routes\": [{\"action\": {\"proxy\": \"$up\"}}]}"
}
put() {
    local out
    out=$(curl -sS -X PUT --unix-socket "$1" --data-binary "$2" http://localhost/config 2>&1 || true)
    case "$out" in
        *"Reconfiguration done"*) ;;
        *) echo "warrend refused the config: $out"; exit 1;;
    esac
}
put "$sock_kept" "$(conf_of "${port[kept]}" "$KEEPALIVE")"
work_kept=$work
work="$work/second"; mkdir -p "$work/state" "$work/tmp" "$work/logs"
start_warrend "$work/logs/warren.log"
put "$sock" "$(conf_of "${port[close]}" 0)"
work=$work_kept                  # cleanup removes the whole tree

# nginx: the same upstream, HTTP/1.1 with keep-alive (its documented way)
servers=(close kept node)
if [ -x /usr/sbin/nginx ]; then
    start_nginx "$work/nginx" "
    upstream node { server 127.0.0.1:${port[up]}; keepalive $KEEPALIVE; }
    server {
        listen 127.0.0.1:${port[nginx]} reuseport;
        location / {
            proxy_pass http://node;
            proxy_http_version 1.1;
            proxy_set_header Connection \"\";
        }
    }"
    servers=(close kept nginx node)
else
    echo "== SKIPPED nginx: not installed (continuing with the others)"
fi
for s in "${servers[@]}"; do
    why=$(check_body "http://127.0.0.1:${port[$s]}/" "$BODY_LEN") \
        || { echo "$s does not answer the $BODY_LEN-byte body: $why"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs, node $("$NODE" --version), $(/usr/sbin/nginx -v 2>&1 || true);" \
     "$(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== close = warrend $("$top/build/warrend" --version 2>&1 | head -1) \"proxy\", one" \
     "upstream connection per request (the default); kept = the same with" \
     "\"proxy_keepalive\": $KEEPALIVE; nginx = proxy_pass, HTTP/1.1, upstream keepalive" \
     "$KEEPALIVE, $NPROC workers; node = the upstream alone. wrk -t$WRK_THREADS" \
     "-c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds alternating; no access logs"

rounds_and_medians
awk -v c="${med[close]}" -v k="${med[kept]}" -v n="${med[nginx]:-0}" 'BEGIN {
    if (c > 0) printf "  kept/close %.2f\n", k / c
    if (n > 0) printf "  kept/nginx %.2f   (Warren against nginx, both keeping upstream connections)\n", k / n
}'
echo "== done (stopping pids ${pids[*]})"

#!/bin/bash
# bench/http_app.sh: one Node.js HTTP server (each request waits SLEEP_MS,
# then answers 1 KB) run as a "protocol": "http" application, with
# "concurrency" 1 and CONCURRENCY, as an app on Warren's unit-http (the
# same file through Unit's loader, on the worker channel), and beside them
# the same server run directly (no Warren), wrk alternately in one run. See bench/README.md. As root:
# bench/http_app.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]
#   SLEEP_MS [10]: what each request waits (an I/O-bound handler)
#   CONCURRENCY [32]: the "concurrency" compared with 1 (as many as wrk's connections)
#   PROCESSES [1]: workers per application
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
SLEEP_MS=${SLEEP_MS:-10}
CONCURRENCY=${CONCURRENCY:-32}
PROCESSES=${PROCESSES:-1}
NPROC=$(nproc)
BODY_LEN=1024

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v node >/dev/null || missing+=(nodejs)
install_missing "${missing[@]}"
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }
command -v node >/dev/null || { echo "node is not available; nothing to run"; exit 1; }
NODE=$(command -v node)

bench_world http-app
# Socket activation when LISTEN_FDS is set (under Warren: fd 3), else the
# port in argv[2] (run directly).
cat > "$app/server.js" <<JS
const http = require("http");
const body = Buffer.alloc($BODY_LEN, "x");
const answer = (res) => {
    res.writeHead(200, {"Content-Type": "text/plain", "Content-Length": body.length});
    res.end(body);
};
// setTimeout(f, 0) waits 1 ms: SLEEP_MS=0 answers at once
const server = http.createServer((req, res) => {
    if ($SLEEP_MS > 0)
        setTimeout(() => answer(res), $SLEEP_MS);
    else
        answer(res);
});
if (process.env.LISTEN_FDS === "1")
    server.listen({fd: 3});
else
    server.listen(Number(process.argv[2]), "127.0.0.1");
JS
make -C "$top" --no-print-directory -s build/node/unit-http
mkdir -p "$app/node_modules"
cp -r "$top/build/node/unit-http" "$app/node_modules/"
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() med=()
port[one]=$(free_port)
port[many]=$(free_port)
port[node]=$(free_port)
port[unit]=$(free_port)
start_warrend "$work/logs/warren.log"
node_app() {
    echo "{\"type\": \"external\", \"protocol\": \"http\", \"executable\": \"$NODE\",
           \"arguments\": [\"$app/server.js\"], \"processes\": $PROCESSES,
           \"concurrency\": $1}"
}
# The same server.js, unchanged, through unit-http's loader (its listen()
# arguments are ignored there).
unit_app="{\"type\": \"external\", \"executable\": \"$NODE\", \"working_directory\": \"$app\",
           \"arguments\": [\"--require\", \"unit-http/loader\", \"$app/server.js\", \"0\"],
           \"processes\": $PROCESSES}"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[one]}": {"pass": "applications/one"},
               "127.0.0.1:${port[many]}": {"pass": "applications/many"},
               "127.0.0.1:${port[unit]}": {"pass": "applications/unit"}},
 "applications": {"one": $(node_app 1), "many": $(node_app "$CONCURRENCY"),
                  "unit": $unit_app}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config 2>&1 || true)
case "$out" in
    *"Reconfiguration done"*) ;;
    *) echo "warrend refused the config: $out"; tail -5 "$work/logs/warren.log"; exit 1;;
esac
"$NODE" "$app/server.js" "${port[node]}" </dev/null >/dev/null 2>&1 &
pids+=($!)
for s in one many unit node; do
    why=$(check_body "http://127.0.0.1:${port[$s]}/" "$BODY_LEN") \
        || { echo "$s does not answer the $BODY_LEN-byte body: $why"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs, node $("$NODE" --version); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== warrend $("$top/build/warrend" --version 2>&1 | head -1): one = \"concurrency\": 1," \
     "many = \"concurrency\": $CONCURRENCY, $PROCESSES process(es) each; unit = the same" \
     "file on Warren's unit-http (worker channel); node = the same" \
     "server alone (${PROCESSES} process, no Warren); each request waits ${SLEEP_MS} ms," \
     "then $BODY_LEN bytes; wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds" \
     "alternating; no access log"

results="$work/results.txt"
: > "$results"
order=(one many unit node)
for round in $(seq "$ROUNDS"); do
    for s in "${order[@]}"; do run_wrk "$s"; done
    order=("${order[@]:1}" "${order[0]}")
done

echo "== medians (req/s)"
for s in one many unit node; do
    med[$s]=$(median_of "$s")
    printf "  %-5s %10s\n" "$s" "${med[$s]}"
done
awk -v one="${med[one]}" -v many="${med[many]}" -v node="${med[node]}" -v unit="${med[unit]}" 'BEGIN {
    if (one > 0) printf "  many/one  %.2f\n", many / one
    if (many > 0) printf "  unit/many %.2f   (unit-http on the channel, against the same server proxied)\n", unit / many
    if (node > 0) printf "  unit/node %.2f\n", unit / node
    if (node > 0) printf "  many/node %.2f   (Warren in front of node, against node alone)\n", many / node
}'
echo "== done (stopping pids ${pids[*]})"

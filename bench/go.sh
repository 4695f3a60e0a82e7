#!/bin/bash
# bench/go.sh: one Go net/http handler (1 KB answers) built once, run three
# ways, wrk alternately in one run: `unit`, on Warren through
# unit.nginx.org/go (src/go/unit, the worker channel); `proxied`, the same
# binary as a "protocol": "http" app (Warren proxies to its net/http on the
# inherited socket); `go`, the same binary alone on its own port. See
# bench/README.md. As root: bench/go.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]
#   PROCESSES [1]: workers per application
#   STREAMS [32]: unit.Streams of the `unit` app (requests at once per worker)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-1}
NPROC=$(nproc)
BODY_LEN=1024

. "$top/bench/common.sh"     # pids, cleanup, install_missing, free_port, start_warrend, bench_world, run_wrk ...
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v go >/dev/null || missing+=(golang-go)
install_missing "${missing[@]}"
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }
command -v go >/dev/null || { echo "go is not available; nothing to build"; exit 1; }

bench_world go
make -C "$top" --no-print-directory -s build/libwarren.a
# Under Warren with a channel: unit.ListenAndServe. With LISTEN_FDS (the
# "protocol": "http" app): net/http on fd 3. Else net/http on argv[1].
cat > "$app/main.go" <<GO
package main

import (
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	unit "unit.nginx.org/go"
)

func main() {
	body := []byte(strings.Repeat("x", $BODY_LEN))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		w.Write(body)
	})
	switch {
	case os.Getenv("LISTEN_FDS") == "1":
		l, err := net.FileListener(os.NewFile(3, "listener"))
		if err != nil {
			panic(err)
		}
		panic(http.Serve(l, h))
	default:
		if n, err := strconv.Atoi(os.Getenv("STREAMS")); err == nil {
			unit.Streams = n
		}
		panic(unit.ListenAndServe(os.Args[1], h))
	}
}
GO
cat > "$app/go.mod" <<MOD
module example.com/bench

go 1.19

require unit.nginx.org/go v0.0.0

replace unit.nginx.org/go => $top/src/go/unit
MOD
(cd "$app" && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$work/gocache" go build -o server .)
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() med=()
servers=(unit proxied go)
for s in "${servers[@]}"; do port[$s]=$(free_port); done
start_warrend "$work/logs/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[unit]}": {"pass": "applications/unit"},
               "127.0.0.1:${port[proxied]}": {"pass": "applications/proxied"}},
 "applications": {
   "unit": {"type": "external", "executable": "$app/server", "arguments": [":0"],
            "processes": $PROCESSES, "environment": {"STREAMS": "${STREAMS:-}"}},
   "proxied": {"type": "external", "protocol": "http", "executable": "$app/server",
               "processes": $PROCESSES, "concurrency": 32}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config 2>&1 || true)
case "$out" in
    *"Reconfiguration done"*) ;;
    *) echo "warrend refused the config: $out"; tail -5 "$work/logs/warren.log"; exit 1;;
esac
GOMAXPROCS=$NPROC "$app/server" "127.0.0.1:${port[go]}" </dev/null >/dev/null 2>&1 &
pids+=($!)
keep_answering /

echo "== $(uname -r), $NPROC CPUs, $(go version | cut -d' ' -f3); $(wrk -v 2>&1 | head -1 | cut -c1-40)"
echo "== one Go binary, $BODY_LEN-byte answers: unit = on Warren through unit.nginx.org/go" \
     "(the worker channel), proxied = its net/http behind Warren (\"protocol\": \"http\"," \
     "\"concurrency\": 32), go = alone; $PROCESSES process(es) per app;" \
     "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds alternating; no access log"
rounds_and_medians /
awk -v u="${med[unit]:-0}" -v p="${med[proxied]:-0}" -v g="${med[go]:-0}" 'BEGIN {
    if (p > 0) printf "  unit/proxied %.2f\n", u / p
    if (g > 0) printf "  unit/go      %.2f   (Warren with the channel, against net/http alone)\n", u / g
}'
echo "== done (stopping pids ${pids[*]})"

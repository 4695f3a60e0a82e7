#!/bin/bash
# bench/rack.sh: one Rack hello-world (10 KB text/plain body) served by
# Warren's Ruby runtime, by uWSGI's rack plugin, by Puma and by Unicorn
# (Debian's packages), 2 worker processes each, wrk alternately in one run.
# See bench/README.md. As root: bench/rack.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]  PROCESSES [2]
#   RB_GC_FREQ [1000000]: uWSGI's --rb-gc-freq (1 is its own default)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-2}
NPROC=$(nproc)
BODY_LEN=10240
UWSGI_PLUGIN=/usr/lib/uwsgi/plugins/rack_ruby31_plugin.so
# uWSGI's rack plugin: run Ruby's GC every this many requests (its
# default, 1, is a full GC per request)
RB_GC_FREQ=${RB_GC_FREQ:-1000000}

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/uwsgi ] || missing+=(uwsgi)
[ -f "$UWSGI_PLUGIN" ] || missing+=(uwsgi-plugin-rack-ruby3.1)
[ -x /usr/bin/puma ] || missing+=(puma)
[ -x /usr/bin/unicorn ] || missing+=(unicorn)
install_missing "${missing[@]}"
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

echo "== building warren-ruby"
make -C "$top" --no-print-directory build/warren-ruby
bench_world rack
cat > "$app/config.ru" <<RACK
body = ("x" * $BODY_LEN).freeze
headers = { "Content-Type" => "text/plain", "Content-Length" => body.bytesize.to_s }.freeze
run lambda { |_env| [200, headers.dup, [body]] }
RACK
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() med=()
servers=()
for s in warren uwsgi uwsgi-ka puma unicorn; do port[$s]=$(free_port); done

# ---- Warren
start_warrend "$work/logs/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren]}": {"pass": "applications/rb"}},
 "applications": {"rb": {"type": "ruby", "script": "$app/config.ru", "processes": $PROCESSES}}}
JSON
)
warren_apply "$conf"

# ---- uWSGI, rack plugin: a connection per request, and kept connections.
#      The plugin runs Ruby's GC after every request unless told otherwise
#      (--rb-gc-freq, default 1: ~1k req/s here); the others leave GC to
#      Ruby, so it does too.
start_uwsgi_modes rack_ruby31 --rb-gc-freq "$RB_GC_FREQ" --rack "$app/config.ru"

# ---- Puma: cluster mode, PROCESSES workers of one thread each (as the
#      others: one request at a time per process), keep-alive on
if [ -x /usr/bin/puma ]; then
    (cd "$app" && exec /usr/bin/puma --bind "tcp://127.0.0.1:${port[puma]}" \
        --workers "$PROCESSES" --threads 1:1 --environment production --quiet \
        config.ru) </dev/null >"$work/logs/puma.log" 2>&1 &
    pids+=($!)
    servers+=(puma)
else
    echo "== SKIPPED puma: not installed"
fi

# ---- Unicorn: PROCESSES workers, a connection per request (it never keeps one)
if [ -x /usr/bin/unicorn ]; then
    echo "worker_processes $PROCESSES" > "$work/unicorn.rb"
    (cd "$app" && exec /usr/bin/unicorn --listen "127.0.0.1:${port[unicorn]}" \
        --env none -c "$work/unicorn.rb" config.ru) </dev/null >"$work/logs/unicorn.log" 2>&1 &
    pids+=($!)
    servers+=(unicorn)
else
    echo "== SKIPPED unicorn: not installed"
fi

keep_answering /

echo "== $(uname -r), $NPROC CPUs; $(ruby -v | cut -d' ' -f1-2); rack $(ruby -e 'require "rack"; print Rack.release'); $(/usr/bin/uwsgi --version 2>/dev/null | sed 's/^/uwsgi /' || true); $(/usr/bin/puma --version 2>/dev/null | head -1 || true); unicorn $(ruby -e 'require "unicorn"; print Unicorn::Const::UNICORN_VERSION' 2>/dev/null || true)"
echo "== app: config.ru, $BODY_LEN-byte text/plain body with Content-Length;" \
     "$PROCESSES worker processes each, one request at a time each;" \
     "wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds alternating; no access logs"
echo "   keep-alive: warren yes; uwsgi-ka yes; puma yes; uwsgi and unicorn no" \
     "(a connection per request: wrk counts each close as a read error)"

rounds_and_medians /
warren_ratios uwsgi uwsgi-ka puma unicorn
echo "== done (stopping pids ${pids[*]})"

#!/bin/bash
# bench/psgi.sh: one PSGI hello-world (10 KB text/plain body) served by
# Warren's Perl runtime, by uWSGI's psgi plugin and by Starman (Debian's
# packages), 2 worker processes each, wrk alternately in one run. See
# bench/README.md. As root: bench/psgi.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]  PROCESSES [2]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
PROCESSES=${PROCESSES:-2}
NPROC=$(nproc)
BODY_LEN=10240
UWSGI_PLUGIN=/usr/lib/uwsgi/plugins/psgi_plugin.so

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/bin/uwsgi ] || missing+=(uwsgi)
[ -f "$UWSGI_PLUGIN" ] || missing+=(uwsgi-plugin-psgi)
[ -x /usr/bin/starman ] || missing+=(starman)
install_missing "${missing[@]}"
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

echo "== building warren-perl"
make -C "$top" --no-print-directory build/warren-perl
bench_world psgi
cat > "$app/app.psgi" <<PSGI
my \$body = "x" x $BODY_LEN;
my \$headers = ["Content-Type" => "text/plain", "Content-Length" => length \$body];
sub { return [200, \$headers, [\$body]] };
PSGI
chmod -R a+rX "$app"          # Warren's workers run as nobody

declare -A port=() med=()
servers=()
for s in warren uwsgi uwsgi-ka starman; do port[$s]=$(free_port); done

# ---- Warren
start_warrend "$work/logs/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren]}": {"pass": "applications/pl"}},
 "applications": {"pl": {"type": "perl", "script": "$app/app.psgi", "processes": $PROCESSES}}}
JSON
)
warren_apply "$conf"

# ---- uWSGI, psgi plugin: a connection per request, and kept connections
start_uwsgi_modes psgi --psgi "$app/app.psgi"

# ---- Starman: its preforking server, PROCESSES workers, keep-alive on
if [ -x /usr/bin/starman ]; then
    /usr/bin/starman --listen "127.0.0.1:${port[starman]}" --workers "$PROCESSES" \
        "$app/app.psgi" </dev/null >"$work/logs/starman.log" 2>&1 &
    pids+=($!)
    servers+=(starman)
else
    echo "== SKIPPED starman: not installed"
fi

keep_answering /

echo "== $(uname -r), $NPROC CPUs; $(perl -e 'print "perl $^V"'); $(/usr/bin/uwsgi --version 2>/dev/null | sed 's/^/uwsgi /' || true); $(perl -MStarman -e 'print "starman $Starman::VERSION"' 2>/dev/null || true)"
echo "== app: app.psgi, $BODY_LEN-byte text/plain body with Content-Length;" \
     "$PROCESSES worker processes each; wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION," \
     "$ROUNDS rounds alternating; no access logs"
echo "   keep-alive: warren yes; uwsgi-ka yes; starman yes; uwsgi no" \
     "(--http-socket closes after every response: wrk counts each close as a read error)"

rounds_and_medians /
warren_ratios uwsgi uwsgi-ka starman
echo "== done (stopping pids ${pids[*]})"

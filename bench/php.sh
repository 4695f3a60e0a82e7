#!/bin/bash
# bench/php.sh: one PHP script (10 KB text/plain body) served by Warren's
# PHP runtime and by nginx in front of php-fpm (Debian's packages, FastCGI
# over a Unix socket, nginx's default of a connection per request), 2 PHP
# processes each, wrk
# alternately in one run. See bench/README.md. As root: bench/php.sh
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
FPM=/usr/sbin/php-fpm8.2

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, check_body, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
[ -x "$FPM" ] || missing+=(php8.2-fpm)
install_missing "${missing[@]}"
# Debian's postinsts start the packaged services: those are not ours
for svc in nginx php8.2-fpm; do
    if [ ${#missing[@]} -gt 0 ] && command -v systemctl >/dev/null \
       && systemctl is-active -q "$svc" 2>/dev/null; then
        systemctl stop "$svc" || true
    fi
done
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

bench_world php
cat > "$app/hello.php" <<PHP
<?php
header("Content-Type: text/plain");
echo str_repeat("x", $BODY_LEN);
PHP
chmod -R a+rX "$app"          # both run PHP as nobody

declare -A port=() med=()
servers=()
for s in warren fpm; do port[$s]=$(free_port); done

# ---- Warren
start_warrend "$work/logs/warren.log"
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren]}": {"pass": "applications/php"}},
 "applications": {"php": {"type": "php", "root": "$app", "processes": $PROCESSES}}}
JSON
)
warren_apply "$conf"

# ---- nginx + php-fpm: static pool of PROCESSES children, FastCGI over a
#      Unix socket, a connection per request (nginx's default; with
#      fastcgi_keep_conn a child stays tied to one nginx worker's idle
#      connection while the other worker's requests wait: wrk timeouts)
mkdir -p "$work/fpm"
cat > "$work/fpm/fpm.conf" <<FPMCONF
[global]
pid = $work/fpm/fpm.pid
error_log = $work/fpm/error.log
daemonize = no
[bench]
user = nobody
group = nogroup
listen = $work/fpm/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = $PROCESSES
FPMCONF
if [ -x /usr/sbin/nginx ] && [ -x "$FPM" ]; then
    "$FPM" -F -y "$work/fpm/fpm.conf" </dev/null >/dev/null 2>&1 &
    pids+=($!)
    start_nginx "$work/nginx" "
    server {
        listen 127.0.0.1:${port[fpm]} reuseport;
        root $app;
        location ~ \\.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$work/fpm/fpm.sock;
        }
    }"
    servers+=(fpm)
else
    echo "== SKIPPED nginx + php-fpm: not installed (continuing with Warren alone)"
fi
for s in "${servers[@]}"; do
    why=$(check_body "http://127.0.0.1:${port[$s]}/hello.php" "$BODY_LEN") \
        || { echo "$s does not answer the $BODY_LEN-byte body: $why"; exit 1; }
done

echo "== $(uname -r), $NPROC CPUs; $("$FPM" -v 2>/dev/null | head -1 | cut -c1-40); $(/usr/sbin/nginx -v 2>&1 || true)"
echo "== app: hello.php, $BODY_LEN-byte text/plain body, opcache on (Debian's conf.d);" \
     "warren = type php, $PROCESSES processes; fpm = nginx $NPROC workers + php-fpm" \
     "pm static $PROCESSES; wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds" \
     "alternating; no access logs"

rounds_and_medians /hello.php
awk -v w="${med[warren]:-0}" -v f="${med[fpm]:-0}" 'BEGIN {
    if (w > 0 && f > 0) printf "  warren/fpm %.2f   (Warren against nginx + php-fpm)\n", w / f
}'
echo "== done (stopping pids ${pids[*]})"

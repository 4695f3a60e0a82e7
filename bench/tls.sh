#!/bin/bash
# bench/tls.sh: HTTPS, Warren vs nginx, same box, same certificate (ECDSA
# P-256), same files, same client: a 1 KB and a 100 KB file over kept
# connections, and a 1 KB file with a new connection (a full handshake, no
# resumption) per request. See bench/README.md. As root: bench/tls.sh
#
# Environment knobs (defaults in brackets):
#   ROUNDS [3]  WRK_THREADS [2]  WRK_CONNS [32]  WRK_DURATION [5s]
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
WRK_THREADS=${WRK_THREADS:-2}
WRK_CONNS=${WRK_CONNS:-32}
WRK_DURATION=${WRK_DURATION:-5s}
NPROC=$(nproc)

. "$top/bench/common.sh"     # pids=(), cleanup on exit, install_missing, free_port, start_warrend, bench_world, run_wrk, median_of
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v openssl >/dev/null || missing+=(openssl)
[ -x /usr/sbin/nginx ] || missing+=(nginx)
install_missing "${missing[@]}"
if [ ${#missing[@]} -gt 0 ] && command -v systemctl >/dev/null \
   && systemctl is-active -q nginx 2>/dev/null; then
    systemctl stop nginx || true     # Debian's postinst starts its own
fi
command -v wrk >/dev/null || { echo "wrk is not available; nothing can be measured"; exit 1; }

bench_world tls
www="$work/www"
mkdir -p "$www"
head -c 1024 /dev/urandom > "$www/1k.bin"
head -c 102400 /dev/urandom > "$www/100k.bin"
chmod -R a+rX "$www"

# One self-signed ECDSA certificate for both servers.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
cat "$work/key.pem" "$work/cert.pem" > "$work/bundle.pem"
chmod 644 "$work/key.pem"           # nginx's workers run as nobody

declare -A port=()
port[warren]=$(free_port)
port[nginx]=$(free_port)
port[warren-new]=${port[warren]}
port[nginx-new]=${port[nginx]}

# ---- warrend: no session cache, no tickets (Unit's defaults)
start_warrend "$work/logs/warren.log"
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary @"$work/bundle.pem" \
      http://localhost/certificates/bench)
case "$out" in *"uploaded"*) ;; *) echo "warrend refused the bundle: $out"; exit 1;; esac
conf=$(cat <<JSON
{"listeners": {"127.0.0.1:${port[warren]}": {"pass": "routes", "tls": {"certificate": "bench"}}},
 "routes": [{"action": {"share": "$www\$uri"}}],
 "settings": {"listen_threads": $NPROC,
              "http": {"idle_timeout": 600, "header_read_timeout": 60}}}
JSON
)
out=$(curl -sS -X PUT --unix-socket "$sock" --data-binary "$conf" http://localhost/config)
case "$out" in *"Reconfiguration done"*) ;; *) echo "warrend refused the config: $out"; exit 1;; esac

# ---- nginx: the same, its defaults but for sessions (off, as Warren's)
start_nginx "$work/nginx" "
    sendfile on;
    default_type application/octet-stream;
    server {
        listen 127.0.0.1:${port[nginx]} ssl reuseport;
        ssl_certificate $work/cert.pem;
        ssl_certificate_key $work/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        root $www;
    }"

for s in warren nginx; do
    for f in 1k.bin 100k.bin; do
        ok=
        for _ in $(seq 100); do
            if cmp -s <(curl -sf --cacert "$work/cert.pem" \
                          "https://localhost:${port[$s]}/$f" 2>/dev/null) "$www/$f"; then
                ok=1; break
            fi
            sleep 0.05
        done
        [ -n "$ok" ] || { echo "$s: https://localhost:${port[$s]}/$f is not the file"; exit 1; }
    done
done

echo "== $(uname -r), $NPROC CPUs; $(openssl version); $(/usr/sbin/nginx -v 2>&1)"
echo "== wrk -t$WRK_THREADS -c$WRK_CONNS -d$WRK_DURATION, $ROUNDS rounds, servers alternating;" \
     "both: $NPROC workers/threads, TLS 1.3, no access log, no session resumption"

scheme=https
for what in "1k.bin" "100k.bin" "1k.bin new"; do
    set -- $what
    file=$1; kind=${2:-}
    results="$work/results-$file$kind.txt"
    : > "$results"
    if [ "$kind" = new ]; then
        echo "== /$file, a new connection (full handshake) per request"
        names=(warren-new nginx-new); extra=(-H "Connection: close")
    else
        echo "== /$file over kept connections"
        names=(warren nginx); extra=()
    fi
    for round in $(seq "$ROUNDS"); do
        if [ $((round % 2)) -eq 1 ]; then order=("${names[0]}" "${names[1]}")
        else order=("${names[1]}" "${names[0]}"); fi
        for s in "${order[@]}"; do run_wrk "$s" "/$file" "${extra[@]}"; done
    done
    w=$(median_of "${names[0]}"); n=$(median_of "${names[1]}")
    /usr/bin/python3 -c "import sys; w, n = float(sys.argv[1]), float(sys.argv[2]); \
print('  median: warren %.0f  nginx %.0f  warren/nginx %.2f' % (w, n, w / n if n else 0))" "$w" "$n"
done
grep -c "TLS handshake failed" "$work/logs/warren.log" | sed 's/^/== handshakes failed in warrend: /'
echo "== done (stopping warrend pid $WPID, nginx pid $NGPID)"

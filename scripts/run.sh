#!/bin/sh
# `make run`: start warrend in the foreground with everything under build/run,
# on the demo configuration (scripts/demo) unless a saved one exists.
# Ctrl-C stops it (SIGINT).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/build/run"
www="$run/www"
sock="$run/control.sock"
app="$run/app"
modules=""
mkdir -p "$run/state" "$www" "$app/php" "$app/perl" "$app/ruby" "$app/node/node_modules"
cp "$top/scripts/demo/index.html" "$www/"
cp "$top/scripts/demo/app.py" "$app/"
cp "$top/scripts/demo/php/index.php" "$app/php/"
cp "$top/scripts/demo/perl/app.psgi" "$app/perl/"
cp "$top/scripts/demo/ruby/config.ru" "$app/ruby/"
cp "$top/scripts/demo/node/app.js" "$app/node/"
rm -rf "$app/java" && cp -r "$top/build/demo/java" "$app/java"
rm -rf "$app/node/node_modules/unit-http"
cp -r "$top/build/node/unit-http" "$app/node/node_modules/"
chmod -R a+rX "$run"
chmod a+x "$top/build"

# The router and the demo app run as nobody: they must reach the demo files
# and the runtimes (build/warren-python, -php, -perl, -ruby, -java). A checkout nobody cannot enter (root's home is
# 0700) gets them staged in /run/warren-demo (only root writes /run).
if command -v runuser >/dev/null && ! runuser -u nobody -- test -r "$www/index.html"; then
    stage=/run/warren-demo
    mkdir -p "$stage/www" "$stage/app/php" "$stage/app/perl" "$stage/app/ruby" "$stage/modules" \
             "$stage/app/node/node_modules"
    cp "$top/scripts/demo/index.html" "$stage/www/"
    cp "$top/scripts/demo/app.py" "$stage/app/"
    cp "$top/scripts/demo/php/index.php" "$stage/app/php/"
    cp "$top/scripts/demo/perl/app.psgi" "$stage/app/perl/"
    cp "$top/scripts/demo/ruby/config.ru" "$stage/app/ruby/"
    cp "$top/scripts/demo/node/app.js" "$stage/app/node/"
    rm -rf "$stage/app/java" && cp -r "$top/build/demo/java" "$stage/app/java"
    rm -rf "$stage/app/node/node_modules/unit-http"
    cp -r "$top/build/node/unit-http" "$stage/app/node/node_modules/"
    cp "$top/build/warren-python" "$top/build/warren-php" "$top/build/warren-perl" \
       "$top/build/warren-ruby" "$top/build/warren-java" "$stage/modules/"
    chmod -R a+rX "$stage"
    www="$stage/www"
    app="$stage/app"
    modules="--modulesdir $stage/modules"
    echo "note: user nobody cannot enter $top (a parent directory is closed):" \
         "the demo's files and the runtimes are served from $stage" >&2
fi

# The HTTPS listener's certificate: self-signed, made once, put straight into
# the store (what PUT /certificates/demo would do); curl trusts it with
# --cacert demo.crt.
if [ ! -f "$run/state/certs/demo" ] && command -v openssl >/dev/null; then
    mkdir -p "$run/state/certs"
    chmod 700 "$run/state/certs"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
        -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
        -keyout "$run/demo.key" -out "$run/demo.crt" 2>/dev/null
    (umask 077 && cat "$run/demo.key" "$run/demo.crt" > "$run/state/certs/demo")
    rm -f "$run/demo.key"
fi

if [ ! -f "$run/state/conf.json" ]; then
    sed -e "s|@WWW@|$www|" -e "s|@RUN@|$run|" -e "s|@APP@|$app|" \
        "$top/scripts/demo/config.json" \
        > "$run/state/conf.json"
fi

cat <<MSG
Warren is starting in the foreground (Ctrl-C stops it). Try, from another shell:

  curl -i http://127.0.0.1:8300/                 # the demo page, a static file
  curl -i http://127.0.0.1:8300/hello            # a return action with a header
  curl http://127.0.0.1:8300/metrics             # Prometheus metrics (loopback only)
  curl -i http://127.0.0.1:8300/app/             # a Python WSGI app, sandboxed
  curl -i http://127.0.0.1:8300/php/             # a PHP script, sandboxed
  curl -i http://127.0.0.1:8300/perl/            # a Perl PSGI app, sandboxed
  curl -i http://127.0.0.1:8300/ruby/            # a Ruby Rack app, sandboxed
  curl -i http://127.0.0.1:8300/node/            # a Node.js app written for Unit, sandboxed
  curl -i http://127.0.0.1:8300/java/            # a Java servlet, sandboxed
  curl -i --cacert $run/demo.crt https://localhost:8343/   # the same over TLS (HTTP/2)
  curl -i --http2-prior-knowledge http://127.0.0.1:8300/hello   # HTTP/2 in cleartext
  curl --unix-socket $sock http://localhost/     # the control API
  build/warren --control unix:$sock /config     # ... or through the warren command
  curl -X PUT -d '{"return": 404}' --unix-socket $sock \\
       http://localhost/config/routes/0/action   # change it live

The configuration persists in $run/state/conf.json; the access log is $run/access.log.
MSG

# $modules is empty or two words
# shellcheck disable=SC2086
exec "$top/build/warrend" --no-daemon --control "unix:$sock" \
    --statedir "$run/state" --pid "$run/warren.pid" --log - --tmpdir "$run" $modules

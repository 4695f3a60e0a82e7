#!/bin/sh
# `make run`: start warrend in the foreground with everything under build/run,
# on the demo configuration (scripts/demo) unless a saved one exists.
# Ctrl-C stops it (SIGINT).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/build/run"
www="$run/www"
sock="$run/control.sock"
mkdir -p "$run/state" "$www"
cp "$top/scripts/demo/index.html" "$www/"
mkdir -p "$run/app"
cp "$top/scripts/demo/app.py" "$run/app/"
chmod -R a+rX "$run"
chmod a+x "$top/build"

if [ ! -f "$run/state/conf.json" ]; then
    sed -e "s|@WWW@|$www|" -e "s|@RUN@|$run|" -e "s|@APP@|$run/app|" \
        "$top/scripts/demo/config.json" \
        > "$run/state/conf.json"
fi
# The router and the demo app run as nobody: they must reach the demo files
# and build/warren-python.
if command -v runuser >/dev/null && ! runuser -u nobody -- test -r "$www/index.html"; then
    echo "note: user nobody cannot read $www (a parent directory is closed);" \
         "the demo page will answer 403" >&2
fi

cat <<MSG
Warren is starting in the foreground (Ctrl-C stops it). Try, from another shell:

  curl -i http://127.0.0.1:8300/                 # the demo page, a static file
  curl -i http://127.0.0.1:8300/hello            # a return action with a header
  curl -i http://127.0.0.1:8300/app/             # a Python WSGI app, sandboxed
  curl --unix-socket $sock http://localhost/     # the control API
  curl -X PUT -d '{"return": 404}' --unix-socket $sock \\
       http://localhost/config/routes/0/action   # change it live

The configuration persists in $run/state/conf.json; the access log is $run/access.log.
MSG

exec "$top/build/warrend" --no-daemon --control "unix:$sock" \
    --statedir "$run/state" --pid "$run/warren.pid" --log - --tmpdir "$run"

#!/bin/sh
# `make run`: start warrend in the foreground with everything under build/run.
# The control socket is where to point curl; Ctrl-C stops it (SIGINT).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/build/run"
mkdir -p "$run/state"
chmod 755 "$top/build" "$run"
sock="$run/control.sock"

cat <<MSG
Warren is starting in the foreground (Ctrl-C stops it). Try, from another shell:

  curl --unix-socket $sock http://localhost/
  curl -X PUT --data-binary '{"listeners": {"127.0.0.1:8300": {"pass": "routes"}},
        "routes": [{"action": {"return": 200}}]}' \\
       --unix-socket $sock http://localhost/config
  curl --unix-socket $sock http://localhost/config/listeners

The configuration persists in $run/state/conf.json.
MSG

exec "$top/build/warrend" --no-daemon --control "unix:$sock" \
    --statedir "$run/state" --pid "$run/warren.pid" --log - --tmpdir "$run"

#!/bin/sh
# Install the Debian packages Warren's build and tests need, only when missing.
# Idempotent: a machine that has everything runs no apt command at all.
# Flask, Django and Starlette: real frameworks the integration tests run
# (tests/integration/test_python_frameworks.py). libphp8.2-embed and
# php8.2-dev: the PHP runtime (build/warren-php) embeds Debian's libphp.
# libnghttp2: HTTP/2 framing in the router; curl and python3-h2 are the
# HTTP/2 clients of tests/integration/test_http2.py.
# libperl-dev: the Perl runtime (build/warren-perl) embeds Debian's libperl;
# Plack (libplack-perl) is a real PSGI stack its tests run.
# ruby-dev and ruby-rack: the Ruby runtime (build/warren-ruby) embeds libruby
# and runs Rack; Sinatra is a real framework its tests run.
# libmozjs-102-dev: SpiderMonkey, the JavaScript of template literals (Unit's
# njs templates) in warrend (src/script); g++ builds that one C++ file.
# nodejs (and its headers: libnode-dev where the nodejs package has none)
# builds and runs src/node, Warren's unit-http; Express (node-express) is a
# real framework its tests run, ws (node-ws) a WebSocket library. golang-go
# builds the tests' Go apps on src/go/unit (unit.nginx.org/go for Warren).
# openjdk-17-jdk-headless: the Java runtime (build/warren-java) embeds its
# JVM and the servlet container is compiled with its javac, against Debian's
# javax.servlet API (libservlet-api-java); JSP pages run on Apache Jasper
# (libtomcat9-java, which brings the Eclipse compiler it uses).
set -eu

PKGS="make gcc clang libclang-rt-14-dev pkg-config libjansson-dev libpcre2-dev libcmocka-dev libseccomp-dev
      libssl-dev openssl libnghttp2-dev
      python3 python3-dev python3-pytest python3-pytest-xdist python3-h2 curl procps util-linux iproute2
      python3-flask python3-django python3-starlette
      libphp8.2-embed php8.2-dev libperl-dev libplack-perl
      ruby-dev ruby-rack ruby-sinatra libmozjs-102-dev g++ nodejs node-express node-ws golang-go
      openjdk-17-jdk-headless libservlet-api-java libtomcat9-java"
[ -e /usr/include/node/node_api.h ] || PKGS="$PKGS libnode-dev"

missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
    echo "deps.sh: missing Debian packages:$missing; run as root to install them" >&2
    exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing

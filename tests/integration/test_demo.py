"""`make run`'s demo configuration (scripts/demo) stays valid and serves:
the static page, the return action and the sandboxed Python, PHP, Perl,
Ruby, Node.js and Java apps."""

import json
import os
import shutil
import subprocess

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

DEMO = os.path.join(wh.REPO, "scripts", "demo")


def test_demo_config_serves_page_return_and_app(warren_factory, tmp_path):
    rt = wh.runtimes_modulesdir()
    www = hh.make_root("warren-www-")
    app = hh.make_root("warren-app-")
    try:
        with open(os.path.join(DEMO, "index.html"), "rb") as f:
            hh.write(www, "index.html", f.read())
        with open(os.path.join(DEMO, "app.py"), "rb") as f:
            hh.write(app, "app.py", f.read())
        for rel in ("php/index.php", "perl/app.psgi", "ruby/config.ru", "node/app.js"):
            with open(os.path.join(DEMO, rel), "rb") as f:
                hh.write(app, rel, f.read())
        wh.node_package(os.path.join(app, "node"))
        shutil.copytree(os.path.join(wh.REPO, "build", "demo", "java"), os.path.join(app, "java"))
        subprocess.run(["chmod", "-R", "a+rX", os.path.join(app, "java")], check=True)
        w = warren_factory(extra_args=["--modulesdir", rt])
        port, tport = wh.free_port(), wh.free_port()
        pki = th.PKI(str(tmp_path))
        th.store(w, pki, "localhost")
        with open(os.path.join(DEMO, "config.json")) as f:
            text = (f.read().replace("@WWW@", www).replace("@APP@", app)
                    .replace("@RUN@", w.dir).replace("127.0.0.1:8300", "127.0.0.1:%d" % port)
                    .replace("127.0.0.1:8343", "127.0.0.1:%d" % tport)
                    .replace('"certificate": "demo"', '"certificate": "localhost"'))
        s, j = w.put("/config", json.loads(text))
        assert (s, j) == (200, wh.SUCCESS), j
        r = hh.get(port, "/")
        assert r.status == 200 and b"<" in r.body, r
        r = hh.get(port, "/hello")
        assert r.status == 200 and r.header("X-Demo"), r
        r = hh.get(port, "/app/x")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren Python worker"), r.body
        assert b"GET /app/x" in r.body, r.body
        r = hh.get(port, "/php")
        assert (r.status, r.header("Location")) == (301, "/php/"), r
        r = hh.get(port, "/php/?a=1")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren PHP worker (PHP 8.2."), r.body
        assert b"GET /php/?a=1" in r.body, r.body
        r = hh.get(port, "/perl/x?b=2")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren Perl worker (Perl 5."), r.body
        assert b"GET /perl/x?b=2" in r.body, r.body
        r = hh.get(port, "/ruby/y?c=3")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren Ruby worker (Ruby 3."), r.body
        assert b"GET /ruby/y?c=3" in r.body, r.body
        r = hh.get(port, "/node/z?d=4")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren Node.js worker (Node v"), r.body
        assert b"GET /node/z?d=4" in r.body, r.body
        r = hh.get(port, "/java/w?e=5")
        assert r.status == 200, r
        assert r.body.startswith(b"Hello from a Warren Java worker (Java 17."), r.body
        assert b"GET /java/w?e=5" in r.body, r.body
        r, _ = th.tls_get(tport, th.client_ctx(pki.cafile), "/hello")
        assert r.status == 200 and r.header("X-Demo"), r
        # HTTP/2 is on in the demo: over TLS (ALPN) and in cleartext.
        for args in (["--cacert", pki.cafile, "--http2",
                      "--resolve", "localhost:%d:127.0.0.1" % tport,
                      "https://localhost:%d/hello" % tport],
                     ["--http2-prior-knowledge", "http://127.0.0.1:%d/hello" % port]):
            out = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w",
                                  "%{http_version} %{http_code}"] + args,
                                 capture_output=True, text=True, timeout=10)
            assert out.stdout == "2 200", (args, out.stdout, out.stderr)
        r = hh.get(port, "/metrics")
        assert r.status == 200, r
        assert r.header("Content-Type").startswith("text/plain; version=0.0.4"), r
        # The PHP and Python answers above, counted under their names.
        assert b'warren_application_responses_total{application="demo",code="2xx"} 1\n' \
            in r.body, r.body
        for name in ("demo-php", "demo-perl", "demo-ruby", "demo-node"):
            assert ('warren_application_responses_total{application="%s",code="2xx"} 1\n'
                    % name).encode() in r.body, r.body
    finally:
        for d in (rt, www, app):
            shutil.rmtree(d, ignore_errors=True)

"""A reload never drops a request: many generation changes (PUTs that alter
the app, and the restart endpoint) while client threads keep requesting,
over keep-alive connections and over a new connection each time. Every
request must get a whole 200 from one generation or the next: none may end
in a closed connection, a 502 or a 503. The "python-tls" case does it over
a TLS listener whose certificate and conf_commands change too.

WARREN_STRESS_ROUNDS overrides the number of generation changes (a longer
hunt for a rare race)."""

import os
import shutil
import threading

import pytest

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HELLO = os.path.join(REPO, "build", "apps", "hello")
PYTHON = "/usr/bin/python3"

WSGI = '''
def application(environ, start_response):
    body = environ["wsgi.input"].read()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body or b"Hello, world\\n"]
'''

PHP = '''<?php
header("Content-Type: text/plain");
$body = file_get_contents("php://input");
echo $body !== "" ? $body : "Hello, world\n";
'''

CLIENTS_KEEP_ALIVE = 3
CLIENTS_NEW_CONN = 2
KEEP_ALIVE_REQUESTS = 50       # then the client opens a new connection
BIG_BODY = 256 * 1024          # beyond the channel's window both ways
ROUNDS = {"c": 200, "c-dynamic": 200, "python": 60, "php": 40, "http": 40, "python-tls": 60}


def rounds(kind):
    return int(os.environ.get("WARREN_STRESS_ROUNDS", ROUNDS[kind]))


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return th.PKI(str(tmp_path_factory.mktemp("warren-pki")))


@pytest.fixture
def stress_app(request, warren_factory, pki):
    """(kind, warrend, port, body the app answers, connect(): a new client
    connection) for the app kind asked."""
    kind = request.param
    connect = lambda: hh.Conn(port, timeout=30)      # noqa: E731
    d = hh.make_root("warren-stress-")
    rt = wh.runtimes_modulesdir()
    if kind in ("c", "c-dynamic"):
        exe = os.path.join(d, "hello")
        shutil.copy(HELLO, exe)
        os.chmod(exe, 0o755)
        app = {"type": "external", "executable": exe, "processes": 2}
        if kind == "c-dynamic":
            app["processes"] = {"max": 3, "spare": 1, "idle_timeout": 1}
        body = b"Hello, world\n"
        w = warren_factory()
    elif kind in ("python", "python-tls"):
        hh.write(d, "hello_wsgi.py", WSGI)
        app = {"type": "python 3", "path": d, "module": "hello_wsgi", "processes": 2}
        body = b"Hello, world\n"
        w = warren_factory(extra_args=["--modulesdir", rt])
    elif kind == "php":
        hh.write(d, "hello.php", PHP)
        app = {"type": "php", "root": d, "script": "hello.php", "processes": 2}
        body = b"Hello, world\n"
        w = warren_factory(extra_args=["--modulesdir", rt])
    else:
        shutil.copy(os.path.join(REPO, "tests", "apps", "http_app.py"), d)
        os.chmod(os.path.join(d, "http_app.py"), 0o644)
        app = {"type": "external", "protocol": "http", "executable": PYTHON,
               "arguments": [os.path.join(d, "http_app.py")], "processes": 2}
        body = None                 # whatever it answers, as long as it is whole
        w = warren_factory()
    app["environment"] = {"ROUND": "start"}
    listeners = None
    port = wh.free_port()
    if kind == "python-tls":
        th.store(w, pki, "localhost", "example")
        listeners = {"127.0.0.1:%d" % port: {"pass": "routes",
                                             "tls": {"certificate": "localhost"}}}
        ctx = th.client_ctx(pki.cafile)
        ctx.check_hostname = False          # either certificate, both the CA's
        connect = lambda: th.TLSConn(port, ctx, timeout=30)    # noqa: E731
    hh.setup(w, [{"action": {"pass": "applications/app"}}], listeners=listeners, port=port,
             extra={"applications": {"app": app}})
    yield kind, w, port, body, connect
    shutil.rmtree(d, ignore_errors=True)
    shutil.rmtree(rt, ignore_errors=True)


def tls_change(w, port, i):
    """One of the TLS listener's changes: its certificate, its commands."""
    tls = "/config/listeners/127.0.0.1:%d/tls" % port
    if i % 4 == 0:
        return w.put(tls + "/certificate", "example" if i % 8 == 0 else "localhost")
    return w.put(tls + "/conf_commands", {"ciphersuites": "TLS_AES_128_GCM_SHA256"}
                 if i % 8 == 2 else {"minprotocol": "TLSv1.2"})


def check(r, body, results, errors):
    if r.status == 200 and (body is None or r.body == body):
        results.append(1)
    else:
        errors.append("status %d, body %r" % (r.status, r.body[:80]))


@pytest.mark.parametrize("stress_app", ["c", "c-dynamic", "python", "php", "http", "python-tls"],
                         indirect=True)
def test_generation_changes_under_load_lose_no_request(stress_app):
    kind, w, port, body, connect = stress_app
    stop = threading.Event()
    results, errors = [], []

    def keep_alive():
        while not stop.is_set():
            try:
                with connect() as c:
                    for _ in range(KEEP_ALIVE_REQUESTS):
                        if stop.is_set():
                            break
                        check(c.request("GET", "/"), body, results, errors)
            except Exception as e:          # noqa: BLE001 - recorded, asserted below
                errors.append(repr(e))

    def new_conn():
        while not stop.is_set():
            try:
                with connect() as c:
                    check(c.request("GET", "/"), body, results, errors)
            except Exception as e:          # noqa: BLE001 - recorded, asserted below
                errors.append(repr(e))

    def post_big():
        data = bytes(range(256)) * (BIG_BODY // 256)
        while not stop.is_set():
            try:
                with connect() as c:
                    for _ in range(KEEP_ALIVE_REQUESTS):
                        if stop.is_set():
                            break
                        r = c.request("POST", "/", body=data,
                                      headers={"Content-Type": "application/octet-stream"})
                        check(r, data if kind != "http" else None, results, errors)
            except Exception as e:          # noqa: BLE001 - recorded, asserted below
                errors.append(repr(e))

    ts = [threading.Thread(target=keep_alive) for _ in range(CLIENTS_KEEP_ALIVE)]
    ts += [threading.Thread(target=post_big)]
    ts += [threading.Thread(target=new_conn) for _ in range(CLIENTS_NEW_CONN)]
    for t in ts:
        t.start()
    n = rounds(kind)
    try:
        for i in range(n):
            if kind == "python-tls" and i % 2 == 0:
                s, j = tls_change(w, port, i)
            elif i % 2:
                s, j = w.get("/control/applications/app/restart")
            else:
                s, j = w.put("/config/applications/app/environment", {"ROUND": str(i)})
            assert s == 200, (i, s, j)
    finally:
        stop.set()
        for t in ts:
            t.join(60)
    print("%s: %d generation changes, %d requests, %d lost" % (kind, n, len(results),
                                                                len(errors)))
    assert errors == [], (len(errors), len(results), errors[:5])
    assert len(results) > n

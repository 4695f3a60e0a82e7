"""Control API: GET/PUT/POST/DELETE on /config, /status, errors, limits,
listeners bound by main, peer credentials on the unix control socket."""

import json
import os
import shutil
import socket
import subprocess
import threading

import pytest

import warren_helpers as wh

SUCCESS = wh.SUCCESS
NOT_FOUND = {"error": "Value doesn't exist."}
NOT_ALLOWED = {"error": "Method isn't allowed."}
INVALID_METHOD = {"error": "Invalid method."}


def put_base(w):
    cfg = wh.base_config(w.dir)
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, SUCCESS), j
    return cfg


def listen_port(cfg):
    k = next(iter(cfg["listeners"]))
    return int(k.rsplit(":", 1)[1]), k


# ---------------------------------------------------------------- GET

def test_get_root_shape(warren):
    s, j = warren.get("/")
    assert s == 200
    assert set(j) == {"certificates", "js_modules", "config", "status"}
    assert j["certificates"] == {} and j["js_modules"] == {}
    assert j["config"] == {}
    assert set(j["status"]) == {"modules", "connections", "requests", "applications"}


def test_get_config_empty(warren):
    assert warren.get("/config") == (200, {})


def test_get_status_shape(warren):
    s, j = warren.get("/status")
    assert s == 200
    assert list(j) == ["modules", "connections", "requests", "applications"], j
    assert set(j["connections"]) == {"accepted", "active", "idle", "closed"}, j
    for v in j["connections"].values():
        assert isinstance(v, int) and v >= 0, j
    assert set(j["requests"]) == {"total"}, j
    assert isinstance(j["requests"]["total"], int) and j["requests"]["total"] >= 0
    assert j["applications"] == {}


def _version(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def _java_version():
    """The JDK's JAVA_VERSION, which warren-java was built against."""
    with open("/usr/lib/jvm/java-17-openjdk-amd64/release") as f:
        for line in f:
            if line.startswith("JAVA_VERSION="):
                return line.split("=", 1)[1].strip().strip('"')
    raise AssertionError("no JAVA_VERSION in the JDK's release file")


def test_status_modules_are_the_runtimes_in_modulesdir(warren_factory):
    """Unit 1.33's /status "modules": each language runtime found in
    --modulesdir, with the version of the language it embeds and its path
    ("lib"); one missing from the directory is not listed."""
    rt = wh.runtimes_modulesdir()
    try:
        os.remove(os.path.join(rt, "warren-php"))
        w = warren_factory(extra_args=["--modulesdir", rt])
        s, j = w.get("/status/modules")
        assert s == 200, j
        want = {
            "python": _version(["/usr/bin/python3", "-c",
                                "import platform; print(platform.python_version())"]),
            "perl": _version(["perl", "-e", 'printf "%vd", $^V']),
            "ruby": _version(["ruby", "-e", "print RUBY_VERSION"]),
            "java": _java_version(),
        }
        assert j == {t: {"version": v, "lib": os.path.join(rt, "warren-" + t)}
                     for t, v in want.items()}, j
        assert w.get("/status/modules/ruby/version") == (200, want["ruby"])
        assert w.get("/status/modules/php")[0] == 404
    finally:
        shutil.rmtree(rt, ignore_errors=True)


def test_get_status_subpath(warren):
    s, j = warren.get("/status/connections")
    assert s == 200 and set(j) == {"accepted", "active", "idle", "closed"}
    s, j = warren.get("/status/requests/total")
    assert s == 200 and isinstance(j, int)


def test_response_pretty_and_connection_close(warren):
    put_base(warren)
    r = warren.request("GET", "/config")
    assert r.status == 200
    assert (r.header("Connection") or "").lower() == "close", r.headers
    assert "json" in (r.header("Content-Type") or ""), r.headers
    text = r.body.decode()
    assert "\n  " in text, "not pretty-printed: %r" % text[:200]
    assert json.loads(text) == warren.config()


def test_server_closes_after_response(warren):
    """Connection: close means it: after one answer the socket reaches EOF even
    though the client asked for keep-alive."""
    data = wh.raw_exchange(warren.sock, b"GET /config HTTP/1.1\r\nHost: x\r\n"
                           b"Connection: keep-alive\r\n\r\n", timeout=5)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:200]
    assert json.loads(body) == {}


def test_get_full_config_roundtrip(warren):
    cfg = put_base(warren)
    assert warren.config() == cfg
    s, j = warren.get("/")
    assert j["config"] == cfg


def test_get_subpaths(warren):
    cfg = put_base(warren)
    assert warren.get("/config/routes") == (200, cfg["routes"])
    assert warren.get("/config/routes/0") == (200, cfg["routes"][0])
    assert warren.get("/config/routes/3/action/return") == (200, 200)
    assert warren.get("/config/routes/0/match/method/1") == (200, "HEAD")
    assert warren.get("/config/settings/http/idle_timeout") == (200, 30)
    assert warren.get("/config/applications/app/type") == (200, "external")


def test_get_percent_decoded_listener(warren):
    cfg = put_base(warren)
    port, key = listen_port(cfg)
    assert warren.get("/config/listeners/127.0.0.1%%3A%d" % port) == \
        (200, cfg["listeners"][key])
    assert warren.get("/config/listeners/127.0.0.1%%3a%d/pass" % port) == \
        (200, "routes")
    # not encoded works as well
    assert warren.get("/config/listeners/%s" % key) == (200, cfg["listeners"][key])


def test_get_key_with_slash(warren):
    put_base(warren)
    assert warren.get("/config/routes/2/match/arguments/a%2Fb") == (200, "1")
    assert warren.get("/config/routes/2/match/arguments/a%2fb") == (200, "1")
    # an unencoded slash is a separator, so this is a different (missing) path
    assert warren.get("/config/routes/2/match/arguments/a/b") == (404, NOT_FOUND)


def test_put_percent_encoded_keys(warren):
    put_base(warren)
    s, j = warren.put("/config/routes/2/match/arguments/x%2Fy%20z%25", "v")
    assert (s, j) == (200, SUCCESS)
    assert warren.config()["routes"][2]["match"]["arguments"]["x/y z%"] == "v"


def test_get_missing(warren):
    put_base(warren)
    for path in ("/config/nope", "/config/listeners/nope", "/config/routes/4",
                 "/config/routes/x", "/config/routes/0/match/nope",
                 "/config/settings/http/idle_timeout/deeper"):
        assert warren.get(path) == (404, NOT_FOUND), path


def test_get_missing_top_level(warren):
    assert warren.get("/nope") == (404, NOT_FOUND)


# ---------------------------------------------------------------- PUT

def test_put_config_and_listener_binds(warren):
    cfg = put_base(warren)
    port, _ = listen_port(cfg)
    assert wh.wait_for(lambda: wh.tcp_connect(port), 3), "listener not accepting"


def test_put_subpath_value(warren):
    put_base(warren)
    assert warren.put("/config/settings/http/idle_timeout", 45) == (200, SUCCESS)
    assert warren.get("/config/settings/http/idle_timeout") == (200, 45)


def test_put_new_key(warren):
    put_base(warren)
    up = {"servers": {"127.0.0.1:%d" % wh.free_port(): {}}}
    assert warren.put("/config/upstreams/second", up) == (200, SUCCESS)
    assert warren.get("/config/upstreams/second") == (200, up)


def test_put_replace_array_element(warren):
    cfg = put_base(warren)
    step = {"match": {"uri": "/x"}, "action": {"return": 204}}
    assert warren.put("/config/routes/0", step) == (200, SUCCESS)
    got = warren.config()["routes"]
    assert got[0] == step and got[1:] == cfg["routes"][1:]


def test_put_missing_parent(warren):
    put_base(warren)
    before = warren.config_bytes()
    assert warren.put("/config/nope/deeper", 1) == (404, NOT_FOUND)
    assert warren.put("/config/routes/9", {"action": {"return": 200}}) == (404, NOT_FOUND)
    assert warren.config_bytes() == before


def test_put_listener_then_delete_refuses(warren):
    port = wh.free_port()
    assert warren.put("/config", {"listeners": {}, "routes": [
        {"action": {"return": 200}}]}) == (200, SUCCESS)
    assert warren.put("/config/listeners/127.0.0.1%%3A%d" % port,
                      {"pass": "routes"}) == (200, SUCCESS)
    assert wh.tcp_connect(port)
    assert warren.delete("/config/listeners/127.0.0.1%%3A%d" % port) == (200, SUCCESS)
    assert wh.wait_for(lambda: not wh.tcp_connect(port), 3), \
        "port still accepting after the listener was deleted"


def test_unix_listener(warren):
    path = os.path.join(warren.dir, "app.sock")
    key = "unix:" + path
    assert warren.put("/config", {"listeners": {key: {"pass": "routes"}},
                                  "routes": [{"action": {"return": 200}}]}) \
        == (200, SUCCESS)
    assert wh.wait_for(lambda: wh.unix_connect(path), 3)
    assert warren.delete("/config/listeners/" + key.replace("/", "%2F")) == (200, SUCCESS)
    assert wh.wait_for(lambda: not wh.unix_connect(path), 3), \
        "unix listener still accepting after delete"


def test_listener_change_keeps_other_listeners(warren):
    p1, p2 = wh.free_port(), wh.free_port()
    cfg = {"listeners": {"127.0.0.1:%d" % p1: {"pass": "routes"}},
           "routes": [{"action": {"return": 200}}]}
    assert warren.put("/config", cfg) == (200, SUCCESS)
    assert warren.put("/config/listeners/127.0.0.1:%d" % p2, {"pass": "routes"}) \
        == (200, SUCCESS)
    assert wh.tcp_connect(p1) and wh.tcp_connect(p2)
    assert warren.delete("/config/listeners/127.0.0.1:%d" % p1) == (200, SUCCESS)
    assert wh.wait_for(lambda: not wh.tcp_connect(p1), 3)
    assert wh.tcp_connect(p2)


def test_router_holds_listen_socket(warren):
    """main binds and passes the listen socket to the router."""
    cfg = put_base(warren)
    port, _ = listen_port(cfg)
    router = warren.pid("router")
    inodes = wh.listen_inodes_tcp(port)
    assert inodes, "nothing listens on %d" % port
    assert wh.wait_for(lambda: inodes & wh.socket_inodes_of(router), 3), \
        "router holds no listen socket of port %d" % port


def test_tcp_connections_to_listener_do_not_leak(warren):
    cfg = put_base(warren)
    port, _ = listen_port(cfg)
    for _ in range(20):
        s = socket.create_connection(("127.0.0.1", port), timeout=2)
        s.close()
    # the post-test check compares router/main fd counts with the baseline


# ---------------------------------------------------------------- POST

def test_post_appends(warren):
    cfg = put_base(warren)
    step = {"match": {"uri": "/new"}, "action": {"return": 201}}
    assert warren.post("/config/routes", step) == (200, SUCCESS)
    got = warren.config()["routes"]
    assert got == cfg["routes"] + [step]


def test_post_appends_nested_array(warren):
    put_base(warren)
    assert warren.post("/config/routes/0/match/method", "POST") == (200, SUCCESS)
    assert warren.get("/config/routes/0/match/method") == (200, ["GET", "HEAD", "POST"])


def test_post_non_array(warren):
    put_base(warren)
    before = warren.config_bytes()
    assert warren.post("/config/listeners", {"pass": "routes"}) == (400, NOT_ALLOWED)
    assert warren.post("/config/settings/http/idle_timeout", 1) == (400, NOT_ALLOWED)
    assert warren.post("/config", {}) == (400, NOT_ALLOWED)
    assert warren.config_bytes() == before


def test_post_missing(warren):
    put_base(warren)
    assert warren.post("/config/nope", 1) == (404, NOT_FOUND)


# ---------------------------------------------------------------- DELETE

def test_delete_path(warren):
    cfg = put_base(warren)
    assert warren.delete("/config/settings/http/idle_timeout") == (200, SUCCESS)
    del cfg["settings"]["http"]["idle_timeout"]
    assert warren.config() == cfg


def test_delete_array_element(warren):
    cfg = put_base(warren)
    assert warren.delete("/config/routes/0") == (200, SUCCESS)
    assert warren.config()["routes"] == cfg["routes"][1:]


def test_delete_config(warren):
    cfg = put_base(warren)
    port, _ = listen_port(cfg)
    assert warren.delete("/config") == (200, SUCCESS)
    assert warren.get("/config") == (200, {})
    assert wh.wait_for(lambda: not wh.tcp_connect(port), 3)


def test_delete_missing(warren):
    put_base(warren)
    before = warren.config_bytes()
    assert warren.delete("/config/nope") == (404, NOT_FOUND)
    assert warren.delete("/config/routes/17") == (404, NOT_FOUND)
    assert warren.config_bytes() == before


# ---------------------------------------------------------------- methods

@pytest.mark.parametrize("method", ["PATCH", "OPTIONS"])
def test_other_methods(warren, method):
    r = warren.request(method, "/config")
    assert r.status == 405, r
    assert r.json() == INVALID_METHOD


def test_put_status_not_allowed(warren):
    r = warren.request("PUT", "/status", {})
    assert r.status == 405, r
    assert r.json() == INVALID_METHOD


# ---------------------------------------------------------------- bad JSON

def test_invalid_json(warren):
    put_base(warren)
    before = warren.config_bytes()
    body = '{\n  "listeners": {},\n  "routes": [,]\n}'
    r = warren.request("PUT", "/config", body)
    assert r.status == 400, r
    j = r.json()
    assert j["error"] == "Invalid JSON."
    assert isinstance(j["detail"], str) and j["detail"]
    loc = j["location"]
    assert set(loc) >= {"offset", "line", "column"}
    assert loc["line"] == 3, loc
    assert 0 <= loc["offset"] <= len(body), loc
    assert loc["column"] >= 1
    assert warren.config_bytes() == before


@pytest.mark.parametrize("body", ["", "{", "nul", '{"a": 1} x', '{"a": 01}',
                                  '{"a":"\\x"}', '{"a" 1}', "\xff"])
def test_invalid_json_variants(warren, body):
    r = warren.request("PUT", "/config", body.encode("latin-1"))
    assert r.status == 400, r
    assert r.json()["error"] == "Invalid JSON."
    assert warren.get("/config") == (200, {})


# ---------------------------------------------------------------- limits

def _raw_put(sock, path, body, timeout=30):
    """PUT with a sender thread so an early answer (413) is read even if the
    server stops reading the body."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock)
    head = ("PUT %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
            % (path, len(body))).encode()

    def send():
        try:
            s.sendall(head + body)
        except OSError:
            pass
    t = threading.Thread(target=send)
    t.start()
    chunks = []
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    except ConnectionResetError:
        pass
    t.join(timeout)
    s.close()
    data = b"".join(chunks)
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else None
    return status, data


def test_body_limit(warren):
    put_base(warren)
    before = warren.config_bytes()
    limit = 8 * 1024 * 1024
    over = b'"' + b"a" * (limit - 1) + b'"'       # limit + 1 bytes
    status, data = _raw_put(warren.sock, "/config/bogus", over)
    assert status == 413, data[:300]
    assert warren.config_bytes() == before


def test_body_at_limit_is_parsed(warren):
    put_base(warren)
    limit = 8 * 1024 * 1024
    body = b'"' + b"a" * (limit - 2) + b'"'       # exactly the limit
    status, data = _raw_put(warren.sock, "/config/bogus", body)
    assert status == 400, data[:300]
    j = json.loads(data.partition(b"\r\n\r\n")[2])
    assert j["error"] == "Invalid configuration.", j


def test_nesting_limit(warren):
    put_base(warren)
    before = warren.config_bytes()
    r = warren.request("PUT", "/config/bogus", "[" * 65 + "]" * 65)
    assert r.status == 400 and r.json()["error"] == "Invalid JSON.", r
    r = warren.request("PUT", "/config/bogus",
                       '{"a":' * 65 + "1" + "}" * 65)
    assert r.status == 400 and r.json()["error"] == "Invalid JSON.", r
    # 64 levels parse; the value is then refused by validation (unknown key)
    r = warren.request("PUT", "/config/bogus", "[" * 64 + "]" * 64)
    assert r.status == 400 and r.json()["error"] == "Invalid configuration.", r
    assert warren.config_bytes() == before


def test_element_limit(warren):
    put_base(warren)
    before = warren.config_bytes()
    r = warren.request("PUT", "/config/bogus", "[" + ",".join(["0"] * 100001) + "]")
    assert r.status == 400, r
    assert r.json()["error"] != "Invalid configuration.", r
    r = warren.request("PUT", "/config/bogus", "[" + ",".join(["0"] * 90000) + "]")
    assert r.status == 400 and r.json()["error"] == "Invalid configuration.", r
    assert warren.config_bytes() == before


# ---------------------------------------------------------------- peer creds

PEER_SCRIPT = r"""
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("CONNECT-FAILED", e.errno); sys.exit(0)
try:
    s.sendall(b"GET /config HTTP/1.1\r\nHost: x\r\n\r\n")
except OSError as e:
    pass
data = b""
try:
    while True:
        c = s.recv(65536)
        if not c: break
        data += c
    print("EOF", len(data), repr(data[:100]))
except ConnectionResetError:
    print("RESET", len(data), repr(data[:100]))
except socket.timeout:
    print("TIMEOUT", len(data), repr(data[:100]))
"""


def _peer(sock, uid):
    kw = {}
    if uid != 0:
        kw = dict(user=uid, group=uid, extra_groups=[])
    r = subprocess.run(["/usr/bin/python3", "-c", PEER_SCRIPT, sock],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20, **kw)
    return r.stdout.decode().strip()


def test_non_root_peer_refused(warren_factory):
    w = warren_factory(extra_args=["--control-mode", "0666"])
    cfg = {"routes": [{"action": {"return": 200}}]}
    assert w.put("/config", cfg) == (200, SUCCESS)
    out = _peer(w.sock, wh.NOBODY_UID)
    word, n = out.split()[:2]
    assert word in ("EOF", "RESET"), out          # closed, not left hanging
    assert n == "0", "uid 65534 got an answer: " + out
    # root through the very same procedure gets an answer
    out = _peer(w.sock, 0)
    assert out.startswith("EOF") and "200" in out, out
    assert w.config() == cfg


def test_refused_peer_many(warren_factory):
    """Refused connections must not leak fds in the controller."""
    w = warren_factory(extra_args=["--control-mode", "0666"])
    # simple loop in the child: 30 refused connections
    loop = ("import socket,sys\nfor _ in range(30):\n"
            "    s=socket.socket(socket.AF_UNIX);s.settimeout(5);s.connect(sys.argv[1])\n"
            "    try: s.sendall(b'GET / HTTP/1.1\\r\\n\\r\\n')\n"
            "    except BrokenPipeError: pass\n"
            "    try:\n        assert s.recv(100)==b''\n"
            "    except ConnectionResetError: pass\n    s.close()\nprint('ok')\n")
    r = subprocess.run(["/usr/bin/python3", "-c", loop, w.sock], user=wh.NOBODY_UID,
                       group=wh.NOGROUP_GID, extra_groups=[], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30)
    assert r.stdout.strip() == b"ok", r
    assert w.get("/config") == (200, {})


# ---------------------------------------------------------------- serialization

def test_concurrent_puts_all_answered(warren):
    port = wh.free_port()
    bodies = []
    for i in range(20):
        cfg = wh.base_config(warren.dir, port=port)
        cfg["settings"]["http"]["idle_timeout"] = 100 + i
        bodies.append(cfg)
    results = [None] * len(bodies)

    def worker(i):
        try:
            results[i] = warren.put("/config", bodies[i])
        except Exception as e:     # noqa: BLE001
            results[i] = ("exception", repr(e))
    ts = [threading.Thread(target=worker, args=(i,)) for i in range(len(bodies))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert all(r == (200, SUCCESS) for r in results), results
    final = warren.config()
    assert final in bodies
    with open(warren.state_file()) as f:
        assert json.load(f) == final
    assert wh.tcp_connect(port)


def test_concurrent_subpath_puts_no_lost_update(warren):
    """Each change is built on the latest document: 20 concurrent PUTs of
    different upstreams must all be present at the end."""
    assert warren.put("/config", {"upstreams": {}}) == (200, SUCCESS)
    ups = {"u%d" % i: {"servers": {"127.0.0.1:%d" % (20000 + i): {}}}
           for i in range(20)}
    results = {}

    def worker(name):
        try:
            results[name] = warren.put("/config/upstreams/" + name, ups[name])
        except Exception as e:     # noqa: BLE001
            results[name] = ("exception", repr(e))
    ts = [threading.Thread(target=worker, args=(n,)) for n in ups]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert all(r == (200, SUCCESS) for r in results.values()), results
    assert warren.config() == {"upstreams": ups}
    with open(warren.state_file()) as f:
        assert json.load(f) == {"upstreams": ups}


# ---------------------------------------------------------------- apply failures

def test_listener_bind_failure_changes_nothing(warren):
    """A listener main cannot bind (port taken by someone else) fails the whole
    change: error answered, running config, state file and existing listeners
    untouched (DESIGN §3)."""
    cfg = put_base(warren)
    port, _ = listen_port(cfg)
    before = warren.config_bytes()
    with open(warren.state_file(), "rb") as f:
        state_before = f.read()
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    taken = busy.getsockname()[1]
    try:
        r = warren.request("PUT", "/config/listeners/127.0.0.1:%d" % taken,
                           json.dumps({"pass": "routes"}))
        assert r.status >= 400, r
        j = r.json()
        assert isinstance(j.get("error"), str) and j["error"], j
        assert warren.config_bytes() == before
        with open(warren.state_file(), "rb") as f:
            assert f.read() == state_before
        assert wh.tcp_connect(port)
        # and the daemon still applies good changes afterwards
        assert warren.put("/config/settings/http/idle_timeout", 31) == (200, SUCCESS)
    finally:
        busy.close()


def test_get_certificates(warren):
    assert warren.get("/certificates") == (200, {})


@pytest.mark.skipif(not wh.ipv6_loopback_ok(), reason="no IPv6 loopback")
def test_ipv6_listener(warren):
    port = wh.free_port(socket.AF_INET6, "::1")
    key = "[::1]:%d" % port
    assert warren.put("/config", {"listeners": {key: {"pass": "routes"}},
                                  "routes": [{"action": {"return": 200}}]}) \
        == (200, SUCCESS)
    assert wh.tcp_connect(port, "::1", socket.AF_INET6)
    assert warren.get("/config/listeners/%5B%3A%3A1%5D%3A" + str(port)) == \
        (200, {"pass": "routes"})
    assert warren.delete("/config/listeners/" + key) == (200, SUCCESS)
    assert wh.wait_for(lambda: not wh.tcp_connect(port, "::1", socket.AF_INET6), 3)


def test_chunked_body_answered(warren):
    """Not in the brief's list, but HTTP/1.1: a PUT whose body is sent with
    Transfer-Encoding: chunked (curl -T - does this) must get an answer at once
    (applied, or 411/501), not silence until the read timeout."""
    req = (b"PUT /config/settings HTTP/1.1\r\nHost: x\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n"
           b"b\r\n{\"http\": {}\r\n1\r\n}\r\n0\r\n\r\n")
    try:
        data = wh.raw_exchange(warren.sock, req, timeout=5)
    except socket.timeout:
        pytest.fail("no answer within 5 s to a chunked PUT")
    assert data.startswith(b"HTTP/1.1 "), data[:200]
    status = int(data.split(b" ", 2)[1])
    assert status in (200, 411, 501), data[:300]
    if status == 200:
        assert warren.get("/config") == (200, {"settings": {"http": {}}})


def test_reload_storm_listeners(warren):
    """50 changes in a row moving a listener between two ports: every one
    answered, the end state right, fds bounded (post-test check)."""
    p1, p2 = wh.free_port(), wh.free_port()
    for i in range(50):
        port = p1 if i % 2 == 0 else p2
        cfg = {"listeners": {"127.0.0.1:%d" % port: {"pass": "routes"}},
               "routes": [{"action": {"return": 200 + i % 3}}]}
        assert warren.put("/config", cfg) == (200, SUCCESS), i
    assert wh.tcp_connect(p2)
    assert wh.wait_for(lambda: not wh.tcp_connect(p1), 3)
    assert warren.config()["listeners"] == {"127.0.0.1:%d" % p2: {"pass": "routes"}}


def test_document_depth_error_has_location(warren):
    """A 64-deep body parses, but put under /config/settings the document
    would be deeper than 64: that is refused as "Invalid configuration.", and
    like every such answer it carries location.path (here under the PUT
    target /settings)."""
    before = warren.config_bytes()
    r = warren.request("PUT", "/config/settings", "[" * 64 + "]" * 64)
    assert r.status == 400, r
    j = r.json()
    assert j["error"] == "Invalid configuration.", j
    path = (j.get("location") or {}).get("path")
    assert isinstance(path, str) and path.startswith("/settings"), j
    assert warren.config_bytes() == before

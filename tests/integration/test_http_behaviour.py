"""Data plane: behaviours fixed after review — share methods, Accept-Ranges,
compile errors at validation, sockets of refused changes, backlog changes,
$response_header_* in the access log."""

import os
import shutil
import socket
import subprocess
import time

import pytest

import http_helpers as hh
import warren_helpers as wh


@pytest.fixture
def root():
    d = hh.make_root()
    hh.write(d, "pub/a.txt", b"hello file\n")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def share_action(root, **more):
    a = {"share": os.path.join(root, "pub") + "$uri"}
    a.update(more)
    return a


def test_share_other_methods_405(vwarren, root):
    port = hh.setup(vwarren, [{"action": share_action(root)}])
    r = hh.get(port, "/a.txt", method="POST", body=b"x=1")
    assert r.status == 405
    assert r.header("Allow") == "GET, HEAD"
    r = hh.get(port, "/a.txt", method="DELETE")
    assert r.status == 405
    assert hh.get(port, "/a.txt").status == 200


def test_share_other_methods_go_to_fallback(vwarren, root):
    port = hh.setup(vwarren, [{"action": share_action(root, fallback={"return": 204})}])
    assert hh.get(port, "/a.txt", method="PUT", body=b"z").status == 204
    assert hh.get(port, "/a.txt").body == b"hello file\n"


def test_file_answers_accept_ranges(vwarren, root):
    port = hh.setup(vwarren, [{"action": share_action(root)}])
    r = hh.get(port, "/a.txt")
    assert r.header("Accept-Ranges") == "bytes"
    r = hh.get(port, "/a.txt", headers={"Range": "bytes=0-4"})
    assert r.status == 206 and r.body == b"hello"


@pytest.mark.parametrize("bad, path", [
    ({"match": {"uri": "~("}, "action": {"return": 200}}, "/routes/0/match/uri"),
    ({"action": {"return": 301, "location": "$nosuchvar"}}, "/routes/0/action/location"),
])
def test_compile_errors_are_400_with_path(vwarren, bad, path):
    before = vwarren.config()
    s, j = vwarren.put("/config/routes", [bad])
    assert s == 400, j
    assert j["error"] == "Invalid configuration."
    assert j["location"]["path"] == path
    assert vwarren.config() == before


def test_refused_change_releases_its_new_listener(warren):
    """A change that adds a listener and is refused later must not keep the
    socket: the same address must be usable by the next change."""
    port = wh.free_port()
    addr = "127.0.0.1:%d" % port
    # Refused by main (the access log directory does not exist) after the
    # listener was bound and handed to the router.
    s, j = warren.put("/config", {
        "listeners": {addr: {"pass": "routes"}},
        "routes": [{"action": {"return": 200}}],
        "access_log": "/nonexistent-dir/warren/access.log"})
    assert s == 500, j
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    hh.setup(warren, [{"action": {"return": 201}}], port=port)
    assert hh.get(port, "/").status == 201


def listen_backlog(port):
    out = subprocess.run(["ss", "-Hltn", "sport = :%d" % port], capture_output=True,
                         text=True, check=True).stdout.split()
    return int(out[2])          # Send-Q of a listening socket is its backlog


def test_backlog_default_and_live_change(vwarren):
    port = wh.free_port()
    addr = "127.0.0.1:%d" % port
    hh.setup(vwarren, [{"action": {"return": 200}}], port=port)
    assert listen_backlog(port) == 511
    s, j = vwarren.put("/config/listeners/%s/backlog" % addr, 77)
    assert s == 200, j
    assert listen_backlog(port) == 77
    assert hh.get(port, "/").status == 200


def test_access_log_response_header_variable(vwarren, root):
    log = os.path.join(vwarren.dir, "resp-fields.log")
    port = hh.setup(vwarren, [{"action": share_action(root)}], extra={"access_log": {
        "path": log,
        "format": "$status $response_header_content_type $response_header_content_length"}})
    hh.get(port, "/a.txt")
    hh.get(port, "/missing")
    deadline = time.time() + 5
    lines = []
    while time.time() < deadline:
        if os.path.exists(log):
            lines = open(log).read().splitlines()
            if len(lines) >= 2:
                break
        time.sleep(0.05)
    assert lines[:2] == ["200 text/plain 11", "404 text/html 84"]


def test_forwarded_client_address_and_scheme(vwarren):
    """A trusted proxy (127.0.0.1) names the client; routing and $remote_addr
    see the client, and the protocol field sets the scheme."""
    port = wh.free_port()
    addr = "127.0.0.1:%d" % port
    hh.setup(vwarren, [
        {"match": {"source": "203.0.113.0/24", "scheme": "https"},
         "action": {"return": 200, "response_headers": {"X-Client": "$remote_addr"}}},
        {"action": {"return": 403}},
    ], listeners={addr: {"pass": "routes", "forwarded": {
        "client_ip": "X-Forwarded-For", "protocol": "X-Forwarded-Proto",
        "source": ["127.0.0.0/8"], "recursive": True}}})
    r = hh.get(port, "/", headers={"X-Forwarded-For": "203.0.113.9, 127.0.0.5",
                                   "X-Forwarded-Proto": "https"})
    assert r.status == 200
    assert r.header("X-Client") == "203.0.113.9"
    # Without the fields the peer itself (127.0.0.1, plain http) is what routes see.
    assert hh.get(port, "/").status == 403


def test_forwarded_untrusted_peer_is_not_believed(vwarren):
    port = wh.free_port()
    addr = "127.0.0.1:%d" % port
    hh.setup(vwarren, [
        {"match": {"source": "203.0.113.0/24"}, "action": {"return": 200}},
        {"action": {"return": 403}},
    ], listeners={addr: {"pass": "routes", "forwarded": {
        "client_ip": "X-Forwarded-For", "source": "192.0.2.1"}}})
    assert hh.get(port, "/", headers={"X-Forwarded-For": "203.0.113.9"}).status == 403


def test_ipv6_listener(vwarren):
    s6 = socket.socket(socket.AF_INET6)
    s6.bind(("::1", 0))
    port = s6.getsockname()[1]
    s6.close()
    hh.setup(vwarren, [{"match": {"destination": "[::1]:%d" % port},
                        "action": {"return": 200, "response_headers":
                                   {"X-Peer": "$remote_addr"}}},
                       {"action": {"return": 404}}],
             listeners={"[::1]:%d" % port: {"pass": "routes"}})
    c = socket.create_connection(("::1", port), timeout=5)
    c.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while True:
        d = c.recv(65536)
        if not d:
            break
        data += d
    c.close()
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"\r\nX-Peer: ::1\r\n" in data


def test_if_range(vwarren, root):
    port = hh.setup(vwarren, [{"action": share_action(root)}])
    full = hh.get(port, "/a.txt")
    etag, lastmod = full.header("ETag"), full.header("Last-Modified")
    r = hh.get(port, "/a.txt", headers={"Range": "bytes=0-4", "If-Range": etag})
    assert (r.status, r.body) == (206, b"hello")
    r = hh.get(port, "/a.txt", headers={"Range": "bytes=0-4", "If-Range": lastmod})
    assert (r.status, r.body) == (206, b"hello")
    r = hh.get(port, "/a.txt", headers={"Range": "bytes=0-4", "If-Range": '"stale-1"'})
    assert (r.status, r.body) == (200, b"hello file\n")
    r = hh.get(port, "/a.txt", headers={"Range": "bytes=0-4",
                                        "If-Range": "Thu, 01 Jan 1970 00:00:00 GMT"})
    assert r.status == 200


def router_threads(w):
    pid = w.pid("router")
    names = [open("/proc/%d/task/%s/comm" % (pid, t)).read().strip()
             for t in os.listdir("/proc/%d/task" % pid)]
    return sorted(n for n in names if n.startswith("router "))


def test_listen_threads_change_live(vwarren):
    port = hh.setup(vwarren, [{"action": {"return": 200}}],
                    settings={"listen_threads": 3})
    assert router_threads(vwarren) == ["router 0", "router 1", "router 2"]
    # Keep-alive connections spread over the threads survive a shrink: the
    # threads let go finish their requests, then end.
    conns = [hh.Conn(port) for _ in range(6)]
    for c in conns:
        assert c.request("GET", "/").status == 200
    s, j = vwarren.put("/config/settings/listen_threads", 1)
    assert s == 200, j
    # Whichever thread each landed on (the kernel picks), every open
    # connection is answered after the shrink: the threads let go answer
    # with Connection: close, they never drop a connection.
    for c in conns:
        r = c.request("GET", "/")
        assert r.status == 200
        c.close()
    assert hh.get(port, "/").status == 200
    deadline = time.time() + 5
    while router_threads(vwarren) != ["router 0"] and time.time() < deadline:
        time.sleep(0.1)
    assert router_threads(vwarren) == ["router 0"]
    s, j = vwarren.put("/config/settings/listen_threads", 2)
    assert s == 200, j
    assert router_threads(vwarren) == ["router 0", "router 1"]
    st = hh.wait_status(vwarren, lambda s: s["connections"]["active"] == 0
                        and s["connections"]["idle"] == 0)["connections"]
    assert st["accepted"] == st["closed"]

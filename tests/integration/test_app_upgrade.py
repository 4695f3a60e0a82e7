"""Upgrades through the application channel (proto.h WR_APP_F_UPGRADE,
warren.h warren_req_upgrade), with tests/apps/tunnel.c: a 101 turns the
client's connection into a tunnel to the worker, bytes both ways, with flow
control, until either side ends it; any other answer is an ordinary
response on a connection that stays usable; 1xx statuses that are not an
upgrade's 101 never reach a client."""

import os
import shutil
import time

import pytest

import http_helpers as hh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TUNNEL = os.path.join(REPO, "build", "apps", "tunnel")
UPGRADE = {"Connection": "Upgrade", "Upgrade": "echo"}


@pytest.fixture
def tport(warren):
    d = hh.make_root("warren-app-")
    exe = os.path.join(d, "tunnel")
    shutil.copy(TUNNEL, exe)
    os.chmod(exe, 0o755)
    port = hh.setup(warren, [{"action": {"pass": "applications/t"}}], extra={
        "applications": {"t": {"type": "external", "executable": exe,
                               "processes": 1, "limits": {"timeout": 2}}}})
    yield port
    shutil.rmtree(d, ignore_errors=True)


def read_exactly(c, n, timeout=10.0):
    end = time.monotonic() + timeout
    while len(c.buf) < n:
        assert time.monotonic() < end, "got %d of %d bytes" % (len(c.buf), n)
        assert c._fill(), "connection ended after %d of %d bytes" % (len(c.buf), n)
    out, c.buf = c.buf[:n], c.buf[n:]
    return out


def open_tunnel(port, proto="echo", extra=b""):
    c = hh.Conn(port)
    c.send(hh.build("GET", "/ws", {"Connection": "Upgrade", "Upgrade": proto}) + extra)
    r = c.read_response(head_only=True)
    return c, r


def test_101_opens_a_tunnel_both_ways(tport):
    c, r = open_tunnel(tport)
    with c:
        assert r.status == 101, r
        assert r.header("Upgrade") == "echo"
        assert r.header("Connection") == "Upgrade"
        assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None
        for msg in (b"hello\n", b"\x00\x01\xff binary\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"):
            c.send(msg)
            assert read_exactly(c, len(msg)) == msg
        c.send(b"bye\n")
        assert read_exactly(c, 8) == b"bye\nbye\n"
        assert c.closed(), "the connection outlived the tunnel"


def test_bytes_sent_with_the_head_go_through(tport):
    """A client may send its first frames right behind the request head:
    they wait in the router and go once the worker switched."""
    c, r = open_tunnel(tport, extra=b"early\n")
    with c:
        assert r.status == 101, r
        assert read_exactly(c, 6) == b"early\n"


def test_large_transfer_is_flow_controlled_and_whole(tport):
    """8 MiB each way through a 256 KiB window: what goes in comes out, in
    order, while both sides send at once."""
    import threading
    c, r = open_tunnel(tport)
    total = 8 << 20
    block = bytes(range(256)) * 256          # 64 KiB, no "bye\n" in it
    err = []

    def writer():
        try:
            for _ in range(total // len(block)):
                c.s.sendall(block)
        except OSError as e:                 # noqa: PERF203 - reported below
            err.append(e)

    with c:
        assert r.status == 101, r
        t = threading.Thread(target=writer)
        t.start()
        got = 0
        while got < total:
            part = read_exactly(c, min(len(block), total - got), timeout=30.0)
            assert part == block[:len(part)], "bytes out of order at %d" % got
            got += len(part)
        t.join(30)
        assert not err, err
        c.send(b"bye\n")
        assert read_exactly(c, 8) == b"bye\nbye\n"


def test_limits_timeout_stops_at_the_101(tport):
    """limits.timeout (2 s here) bounds the wait for the answer; a tunnel
    that is open lasts as long as both ends want."""
    c, r = open_tunnel(tport)
    with c:
        assert r.status == 101
        time.sleep(3)
        c.send(b"still there\n")
        assert read_exactly(c, 12) == b"still there\n"
        c.send(b"bye\n")
        assert read_exactly(c, 8) == b"bye\nbye\n"


def test_client_leaving_aborts_the_tunnel(warren, tport):
    """The worker's thread is freed: with 4 threads, 6 tunnels opened and
    dropped one after another would otherwise leave none for a request."""
    for _ in range(6):
        c, r = open_tunnel(tport)
        assert r.status == 101
        c.send(b"x")
        assert read_exactly(c, 1) == b"x"
        c.close()
    r = hh.get(tport, "/plain")
    assert (r.status, r.body) == (200, b"upgrade=0 body=0\n")


def test_worker_ending_at_once_closes(tport):
    c, r = open_tunnel(tport, "close")
    with c:
        assert r.status == 101
        assert read_exactly(c, 8) == b"closing\n"
        assert c.closed()


def test_refused_upgrade_is_an_ordinary_response(tport):
    """Another status: the request had no body (the app's read returns the
    end at once) and the connection stays for the next request."""
    with hh.Conn(tport) as c:
        r = c.request("GET", "/ws", {"Connection": "Upgrade", "Upgrade": "h2c"})
        assert (r.status, r.body) == (426, b"no such protocol\n"), r
        assert r.header("Connection") is None
        r = c.request("GET", "/plain")
        assert (r.status, r.body) == (200, b"upgrade=0 body=0\n")


def test_what_is_not_an_upgrade(tport):
    """An Upgrade field without "Connection: upgrade", HTTP/1.0, or a
    request with a body: ordinary requests, warren_req_upgrade() 0."""
    with hh.Conn(tport) as c:
        r = c.request("GET", "/plain", {"Upgrade": "echo"})
        assert r.body == b"upgrade=0 body=0\n", r
        r = c.request("POST", "/plain", dict(UPGRADE), body=b"abc")
        assert r.body == b"upgrade=0 body=3\n", r
    r = hh.get(tport, "/plain", dict(UPGRADE), version="HTTP/1.0")
    assert r.body == b"upgrade=0 body=0\n", r


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_interim_status_is_refused_by_libwarren(tport, status):
    r = hh.get(tport, "/status/%d" % status)
    assert (r.status, r.body) == (200, b"refused\n"), r


def test_other_statuses_still_pass(tport):
    r = hh.get(tport, "/status/204")
    assert r.status == 204


def test_interim_status_from_a_worker_is_a_502(warren):
    """A worker on another library may send a 1xx as its response: its
    request alone gets 502 (logged), and the worker serves on."""
    d = hh.make_root("warren-app-")
    try:
        hh.write(d, "interim.py", INTERIM_APP, 0o755)
        port = hh.setup(warren, [{"action": {"pass": "applications/i"}}], extra={
            "applications": {"i": {"type": "external",
                                   "executable": "/usr/bin/python3",
                                   "arguments": [os.path.join(d, "interim.py")],
                                   "processes": 1}}})
        r = hh.get(port, "/103")
        assert r.status == 502, r
        assert 'application "i" answered an interim status (1xx)' in warren.log()
        r = hh.get(port, "/200")
        assert (r.status, r.body) == (200, b"fine\n"), r
    finally:
        shutil.rmtree(d, ignore_errors=True)


# A worker speaking the channel by hand (proto.h), so it can send what
# libwarren refuses: the path "/103" is answered with status 103.
INTERIM_APP = r'''
import os, socket, struct
REQ_HEAD, REQ_BODY, REQ_END, RESP_HEAD, ABORT = 2, 3, 4, 5, 8
F_END = 1
s = socket.socket(fileno=int(os.environ["WARREN_CHANNEL_FD"]))
s.send(struct.pack("=HHII", 1, 0, 0, 16) + struct.pack("=IIII", 4, os.getpid(), 1, 0))
while True:
    m = s.recv(1 << 17)
    if not m:
        break
    t, fl, stream, n = struct.unpack("=HHII", m[:12])
    if t != REQ_HEAD:
        continue
    p = m[12:]
    strs = []
    for _ in range(3):
        (k,) = struct.unpack("=I", p[:4]); strs.append(p[4:4 + k]); p = p[4 + k:]
    status = 103 if strs[2] == b"/103" else 200
    body = b"" if status == 103 else b"fine\n"
    head = struct.pack("=II", status, 0) + body
    flags = F_END | (2 if body else 0)
    s.send(struct.pack("=HHII", RESP_HEAD, flags, stream, len(head)) + head)
'''

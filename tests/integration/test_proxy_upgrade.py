"""Upgrades through proxy.c: the "proxy" action and "protocol": "http"
applications pass a request that asks to switch protocols (its Upgrade
field, "Connection: upgrade"); an upstream's 101 makes the connection a
tunnel, bytes both ways until one side closes; another answer is an
ordinary response; a 101 nobody asked for is still a 502; an idle tunnel
meets settings.http.websocket.read_timeout."""

import os
import socket
import threading
import time

import pytest

import http_helpers as hh
from test_http_app import appdir  # noqa: F401 - the fixture

PYTHON = "/usr/bin/python3"
UPGRADE = {"Connection": "Upgrade", "Upgrade": "echo"}


class EchoUpstream:
    """A raw upstream: 101 and an echo (until a line "bye") for an upgrade
    to "echo", 101 anyway for GET /rogue, else 426. Keeps every head."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.heads = []
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while True:
            try:
                conn, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    def serve(self, conn):
        with conn:
            got = hh.recv_head(conn)
            if got is None:
                return
            head, rest = got
            self.heads.append(head.decode("latin-1"))
            lower = head.lower()
            if b"upgrade: echo" in lower or head.startswith(b"GET /rogue"):
                conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\n"
                             b"Connection: Upgrade\r\n\r\n")
                seen = rest
                if rest:
                    conn.sendall(rest)
                while not seen.endswith(b"bye\n"):
                    d = conn.recv(65536)
                    if not d:
                        return
                    conn.sendall(d)
                    seen = (seen + d)[-8:]
                conn.sendall(b"bye\n")
            else:
                conn.sendall(b"HTTP/1.1 426 Upgrade Required\r\nContent-Length: 3\r\n"
                             b"Connection: close\r\n\r\nno\n")

    def close(self):
        self.s.close()


@pytest.fixture
def echo_up():
    u = EchoUpstream()
    yield u
    u.close()


def read_exactly(c, n, timeout=10.0):
    end = time.monotonic() + timeout
    while len(c.buf) < n:
        assert time.monotonic() < end, "got %d of %d bytes" % (len(c.buf), n)
        assert c._fill(), "connection ended after %r" % c.buf
    out, c.buf = c.buf[:n], c.buf[n:]
    return out


def tunnel_echo(port, early=b""):
    """Opens the tunnel, checks the echo and the end; returns the 101."""
    with hh.Conn(port) as c:
        c.send(hh.build("GET", "/ws", UPGRADE) + early)
        r = c.read_response(head_only=True)
        assert r.status == 101, r
        assert r.header("Upgrade") == "echo"
        assert r.header("Connection") == "Upgrade"
        assert r.header("Content-Length") is None and r.header("Transfer-Encoding") is None
        if early:
            assert read_exactly(c, len(early)) == early
        big = bytes(range(256)) * 4096          # 1 MiB, through both windows
        c.send(big)
        assert read_exactly(c, len(big)) == big
        c.send(b"bye\n")
        assert read_exactly(c, 8) == b"bye\nbye\n"
        assert c.closed()
        return r


def test_proxy_action_passes_an_upgrade(warren, echo_up):
    port = hh.setup(warren, [{"action": {"proxy": "http://127.0.0.1:%d" % echo_up.port}}])
    tunnel_echo(port, early=b"first\n")
    head = echo_up.heads[-1].lower()
    assert "\r\nupgrade: echo" in head and "\r\nconnection: upgrade" in head, head
    # Refused by the upstream: an ordinary answer, relayed as such.
    with hh.Conn(port) as c:
        r = c.request("GET", "/ws", {"Connection": "Upgrade", "Upgrade": "h2c"})
        assert (r.status, r.body) == (426, b"no\n"), r
    # A request that did not ask keeps its Connection: close to upstream,
    # and a 101 it gets anyway is the upstream's error: 502.
    r = hh.get(port, "/rogue")
    assert r.status == 502, r
    assert "connection: close" in echo_up.heads[-1].lower()
    assert "malformed or unsupported response head" in warren.log()


def test_idle_tunnel_meets_read_timeout(warren, echo_up):
    port = hh.setup(warren, [{"action": {"proxy": "http://127.0.0.1:%d" % echo_up.port}}],
                    settings={"http": {"websocket": {"read_timeout": 1}}})
    with hh.Conn(port) as c:
        c.send(hh.build("GET", "/ws", UPGRADE))
        assert c.read_response(head_only=True).status == 101
        c.send(b"ping\n")
        assert read_exactly(c, 5) == b"ping\n"
        t0 = time.monotonic()
        assert c.closed(timeout=5.0)
        assert 0.5 < time.monotonic() - t0 < 4.5


def test_http_application_takes_an_upgrade(warren, appdir):
    """A "protocol": "http" worker (http.server on its inherited socket)
    switches protocols itself; limits.timeout stops at the 101. The tunnel
    holds the worker (one request at a time) until it ends; then the same
    worker serves on."""
    port = hh.setup(warren, [{"action": {"pass": "applications/web"}}], extra={
        "applications": {"web": {
            "type": "external", "protocol": "http", "executable": PYTHON,
            "arguments": [os.path.join(appdir, "http_app.py")], "processes": 1,
            "limits": {"timeout": 2}}}})
    with hh.Conn(port) as c:
        c.send(hh.build("GET", "/ws", UPGRADE))
        r = c.read_response(head_only=True)
        assert r.status == 101, r
        time.sleep(2.5)                              # past limits.timeout
        c.send(b"late\n")
        assert read_exactly(c, 5) == b"late\n"
        c.send(b"bye\n")
        assert read_exactly(c, 8) == b"bye\nbye\n"
        assert c.closed()
    tunnel_echo(port, early=b"early\n")
    r = hh.get(port, "/")
    assert r.status == 200 and r.body.startswith(b"hello "), r

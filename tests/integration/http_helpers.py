"""
Helpers for the data-plane tests (test_http_*.py): put a config with a
listener on a free loopback port, talk HTTP to it over raw sockets (so that
malformed input, pipelining and connection closes can be observed exactly),
build world-readable share directories for the router (it runs as nobody).

Standard library only; Debian's /usr/bin/python3.
"""

import json
import http.server
import os
import socket
import time

import warren_helpers as wh

CRLF = b"\r\n"


class HTTPError(AssertionError):
    pass


# --------------------------------------------------------------------------
# config

def setup(w, routes, settings=None, listeners=None, extra=None, port=None):
    """PUT a config: one listener 127.0.0.1:<free port> passing to "routes"
    (or the given listeners dict), the given routes (list or dict of named
    routes), optional settings / extra top-level keys. Returns the port."""
    port = port or wh.free_port()
    cfg = {"listeners": listeners if listeners is not None else
           {"127.0.0.1:%d" % port: {"pass": "routes"}},
           "routes": routes}
    if settings is not None:
        cfg["settings"] = settings
    if extra:
        cfg.update(extra)
    s, j = w.put("/config", cfg)
    assert (s, j) == (200, wh.SUCCESS), "config refused: %r %r\n%s" % (
        s, j, json.dumps(cfg, indent=1))
    return port


def status(w):
    s, j = w.get("/status")
    assert s == 200, (s, j)
    return j


# --------------------------------------------------------------------------
# responses

class Resp:
    def __init__(self, status, reason, version, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers        # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def __repr__(self):
        return "<Resp %d %r %r>" % (self.status, self.headers, self.body[:200])


class Conn:
    """One client connection with its own receive buffer."""

    EOF_ERRORS = (ConnectionResetError,)      # what counts as the peer gone

    def __init__(self, port=None, host="127.0.0.1", unix=None, timeout=5.0):
        if unix:
            self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect(unix)
        else:
            self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.s.settimeout(timeout)
            self.s.connect((host, port))
        self.buf = b""
        self.eof = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.s.sendall(data)

    def _fill(self):
        """Read more bytes into buf; False on EOF (or reset)."""
        if self.eof:
            return False
        try:
            d = self.s.recv(1 << 20)
        except self.EOF_ERRORS:
            d = b""
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_response(self, head_only=False):
        """Read one response (framed by Content-Length; no length: until
        EOF). Raises HTTPError if the connection ends before a whole one."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                raise HTTPError("connection ended before a response head; got %r"
                                % self.buf[:500])
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise HTTPError("bad status line %r" % lines[0])
        st = int(parts[1])
        headers = []
        for ln in lines[1:]:
            k, sep, v = ln.decode("latin-1").partition(":")
            if not sep or k != k.strip():
                raise HTTPError("bad header line %r" % ln)
            headers.append((k, v.strip()))
        r = Resp(st, parts[2] if len(parts) > 2 else "", parts[0], headers, b"", head)
        if st < 200 and st != 101:
            return r
        cl = r.all("Content-Length")
        if len(cl) > 1:
            raise HTTPError("several Content-Length: %r" % cl)
        te = r.header("Transfer-Encoding")
        if te is not None and (te.lower() != "chunked" or cl):
            raise HTTPError("unexpected framing in %r" % head)
        if head_only or st in (204, 304):
            return r
        if te is not None:
            r.body = self._read_chunked()
        elif cl:
            n = int(cl[0])
            while len(self.buf) < n:
                if not self._fill():
                    raise HTTPError("body cut at %d of %d bytes" % (len(self.buf), n))
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            r.body, self.buf = self.buf, b""
        return r

    def _need(self, n):
        while len(self.buf) < n:
            if not self._fill():
                raise HTTPError("chunked body cut short; have %r" % self.buf[:200])

    def _line(self):
        while b"\r\n" not in self.buf:
            if not self._fill():
                raise HTTPError("chunked body cut short; have %r" % self.buf[:200])
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def _read_chunked(self):
        """A chunked body, strictly: hex sizes, CRLF after each chunk, no
        trailers expected."""
        body = b""
        while True:
            size = self._line()
            if not size or any(ch not in b"0123456789abcdefABCDEF" for ch in size):
                raise HTTPError("bad chunk size line %r" % size)
            n = int(size, 16)
            if n == 0:
                if self._line() != b"":
                    raise HTTPError("trailers after the last chunk")
                return body
            self._need(n + 2)
            if self.buf[n:n + 2] != b"\r\n":
                raise HTTPError("no CRLF after a chunk")
            body, self.buf = body + self.buf[:n], self.buf[n + 2:]

    def closed(self, timeout=3.0):
        """True if the peer closes (EOF or reset) within timeout with no more
        data; raises if unexpected data arrives."""
        end = time.monotonic() + timeout
        old = self.s.gettimeout()
        try:
            while time.monotonic() < end:
                if self.buf:
                    raise HTTPError("unexpected bytes after the response: %r" % self.buf[:300])
                self.s.settimeout(max(0.01, end - time.monotonic()))
                try:
                    if not self._fill():
                        return True
                except socket.timeout:
                    return False
            return False
        finally:
            self.s.settimeout(old)

    def still_open(self, wait=0.3):
        """True if nothing (no EOF) arrives within wait seconds."""
        old = self.s.gettimeout()
        self.s.settimeout(wait)
        try:
            d = self.s.recv(65536)
        except socket.timeout:
            return True
        except self.EOF_ERRORS:
            self.eof = True
            return False
        finally:
            self.s.settimeout(old)
        if d:
            self.buf += d
            raise HTTPError("unexpected bytes: %r" % d[:300])
        self.eof = True
        return False

    def request(self, method="GET", path="/", headers=None, body=b"", host="localhost",
                version="HTTP/1.1"):
        self.send(build(method, path, headers, body, host, version))
        return self.read_response(head_only=(method == "HEAD"))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def build(method="GET", path="/", headers=None, body=b"", host="localhost",
          version="HTTP/1.1"):
    """Bytes of a request. headers: dict or list of pairs; Host is added
    unless host is None; Content-Length is added for a non-empty body unless
    already present."""
    if isinstance(body, str):
        body = body.encode()
    hl = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {k.lower() for k, _ in hl}
    out = ["%s %s %s" % (method, path, version)]
    if host is not None and "host" not in names:
        out.append("Host: %s" % host)
    for k, v in hl:
        out.append("%s: %s" % (k, v))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        out.append("Content-Length: %d" % len(body))
    return ("\r\n".join(out) + "\r\n\r\n").encode("latin-1") + body


def get(port, path="/", headers=None, method="GET", body=b"", host="localhost",
        version="HTTP/1.1", unix=None):
    """One request on a fresh connection; returns the Resp."""
    with Conn(port, unix=unix) as c:
        return c.request(method, path, headers, body, host, version)


def recv_head(sock):
    """What a test server reads of a request: (head, the bytes after it), or
    None when the peer closed before a whole head."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = sock.recv(65536)
        if not d:
            return None
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest


def read_to_end(sock):
    """Every byte sock gets until the peer closes (or resets) it."""
    data = b""
    try:
        while True:
            d = sock.recv(65536)
            if not d:
                break
            data += d
    except ConnectionResetError:
        pass
    return data


def raw(port, data, timeout=5.0):
    """Send raw bytes; return (first response or None, closed_after)."""
    with Conn(port, timeout=timeout) as c:
        c.send(data)
        try:
            r = c.read_response()
        except HTTPError:
            return None, True
        return r, c.closed(3.0)


# --------------------------------------------------------------------------
# files for the share action (the router runs as nobody)

def make_root(prefix="warren-share-"):
    d = wh.make_tmpdir(prefix)
    os.chmod(d, 0o755)
    return d


def write(root, rel, data, mode=0o644):
    p = os.path.join(root, rel)
    d = os.path.dirname(p)
    os.makedirs(d, exist_ok=True)
    # every directory between root and the file is traversable
    while d.startswith(root) and len(d) >= len(root):
        os.chmod(d, 0o755)
        d = os.path.dirname(d)
    if isinstance(data, str):
        data = data.encode()
    with open(p, "wb") as f:
        f.write(data)
    os.chmod(p, mode)
    return p


def wait_status(w, pred, timeout=5.0):
    """Poll /status until pred(status) holds; return the last status."""
    last = [None]

    def f():
        last[0] = status(w)
        return pred(last[0])
    wh.wait_for(f, timeout, 0.05)
    return last[0]


def quiet(w, timeout=5.0):
    """Wait until the router has no connection open; return /status."""
    st = wait_status(w, lambda s: s["connections"]["active"] == 0
                     and s["connections"]["idle"] == 0
                     and s["connections"]["accepted"] == s["connections"]["closed"],
                     timeout)
    assert st["connections"]["accepted"] == st["connections"]["closed"], st
    return st


class NumberedHandler(http.server.BaseHTTPRequestHandler):
    """An HTTP/1.1 test server's handler, quiet, numbering its connections
    (self.conn_no, from the server's itertools counter `numbers`)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.conn_no = next(self.server.numbers)


def wait_lines(path, n, timeout=5.0):
    """Wait until path has at least n complete lines; return them all."""
    def f():
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            return None
        if not data.endswith(b"\n") and data:
            return None
        ls = data.decode("utf-8").splitlines()
        return ls if len(ls) >= n else None
    got = wh.wait_for(f, timeout, 0.05)
    if got is None:
        try:
            with open(path, "rb") as fh:
                have = fh.read()
        except FileNotFoundError:
            have = b"<no file>"
        raise AssertionError("expected %d lines in %s, have %r" % (n, path, have[-2000:]))
    return got

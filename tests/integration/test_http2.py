"""HTTP/2 in the router: settings.http.http2 (default false) and
settings.http.http2_max_concurrent_streams (1..1024, default 128).

With http2 on, a plain listener serves a connection that starts with the
client connection preface as HTTP/2 ("prior knowledge", h2c; never by
Upgrade: h2c) next to HTTP/1.1 clients, and a TLS listener offers h2 by ALPN.
Every route action answers over HTTP/2 as over HTTP/1.1; the request and
response are mapped (":authority" -> Host, cookies joined, no
connection-specific fields back), bodies flow under flow control both ways,
streams are concurrent up to the limit announced (past it: REFUSED_STREAM
before the client acknowledged the SETTINGS, a connection error after), a
cancelled stream leaves its connection alone, protocol errors end a
connection with GOAWAY, applications are told SERVER_PROTOCOL HTTP/2.0.

The clients: curl (with nghttp2) and a small raw client on Debian's python3-h2
(H2Client below). One daemon with warren-python in its --modulesdir, a
self-signed certificate, a share root, a Python WSGI application and a Python
upstream serves the whole module; each test PUTs the configuration it needs."""

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import threading
import time

import pytest

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings
import hpack

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

MB = 1 << 20
SUCCESS = wh.SUCCESS
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
TEXT = bytes(range(32, 127)) * 3          # 285 bytes
MAX_BODY = 4 * MB
CONNECTION_SPECIFIC = {b"connection", b"keep-alive", b"transfer-encoding", b"upgrade",
                       b"proxy-connection"}

# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)

APP = r'''
import hashlib
import json
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "")
    body = environ["wsgi.input"].read()
    if path == "/app/slow":
        time.sleep(float(environ.get("QUERY_STRING") or "1"))
    if path == "/app/echo":
        start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    if path == "/app/stream":
        # no Content-Length: HTTP/1.1 would send it chunked
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Streamed", "Yes")])
        return [b"part1-", b"part2-", b"part3"]
    info = {k: environ.get(k) for k in (
        "REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "HTTP_HOST", "HTTP_COOKIE",
        "CONTENT_LENGTH", "HTTP_X_TEST", "SERVER_PROTOCOL")}
    info["scheme"] = environ["wsgi.url_scheme"]
    info["len"] = len(body)
    info["sha256"] = hashlib.sha256(body).hexdigest()
    out = json.dumps(info).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out))), ("X-App", "Echo")])
    return [out]
'''


def sha(b):
    return hashlib.sha256(b).hexdigest()


# ============================================================ a raw HTTP/2 client

class H2Stream:
    def __init__(self, sid):
        self.sid = sid
        self.headers = None            # [(name bytes, value bytes)] as received
        self.informational = []
        self.data = bytearray()
        self.data_frames = 0           # DATA frames with a payload
        self.unacked = 0               # received, not yet acknowledged
        self.max_unacked = 0
        self.ended = False
        self.reset = None              # error code of a RST_STREAM from the server
        self.trailers = None

    @property
    def status(self):
        for k, v in self.headers or ():
            if k == b":status":
                return int(v)
        return None

    def header(self, name):
        if isinstance(name, str):
            name = name.encode()
        for k, v in self.headers or ():
            if k == name:
                return v.decode("latin-1")
        return None

    def all(self, name):
        if isinstance(name, str):
            name = name.encode()
        return [v.decode("latin-1") for k, v in self.headers or () if k == name]

    @property
    def body(self):
        return bytes(self.data)

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<H2Stream %d status=%s ended=%s reset=%s headers=%r body=%r>" % (
            self.sid, self.status, self.ended, self.reset, self.headers,
            bytes(self.data[:200]))


TLS_EOF = (ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError)


class H2Client:
    """HTTP/2 over one socket (h2c with prior knowledge, or TLS with ALPN h2).
    Events are collected per stream; pump() reads once, wait() reads until a
    predicate holds. auto_ack: received DATA is acknowledged (WINDOW_UPDATE)
    at once; otherwise the test does it (a slow reader)."""

    def __init__(self, port, tls=False, alpn=("h2",), timeout=10.0, settings=None,
                 conn_window=0, auto_ack=True, handshake=True):
        self.timeout = timeout
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        try:
            self._setup(raw, tls, alpn, settings, conn_window, auto_ack, handshake)
        except BaseException:
            raw.close()
            raise

    def _setup(self, raw, tls, alpn, settings, conn_window, auto_ack, handshake):
        self.alpn = None
        if tls:
            ctx = th.client_ctx()
            ctx.set_alpn_protocols(list(alpn))
            raw = ctx.wrap_socket(raw, server_hostname="localhost")
            self.alpn = raw.selected_alpn_protocol()
        self.s = raw
        self.scheme = "https" if tls else "http"
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_inbound_headers=False,
                                        normalize_inbound_headers=False)
        self.c = h2.connection.H2Connection(config=cfg)
        self.streams = {}
        self.goaway = None               # (error_code, last_stream_id)
        self.server_settings = None      # {code: value} of the server's first SETTINGS
        self.settings_acked = False
        self.eof = False
        self.send_failed = False
        self.after_goaway = b""
        self.auto_ack = auto_ack
        self.c.initiate_connection()
        if settings:
            self.c.update_settings(settings)
        if conn_window:
            self.c.increment_flow_control_window(conn_window)
        self.flush()
        if handshake:
            self.handshake()

    # ---- plumbing
    def flush(self):
        d = self.c.data_to_send()
        if d and not self.send_failed:
            try:
                self.s.sendall(d)
            except (OSError, ssl.SSLError):
                self.send_failed = True

    def handshake(self):
        """Wait for the server's SETTINGS and its ACK of ours."""
        ok = self.wait(lambda: self.server_settings is not None and self.settings_acked)
        assert ok, "no HTTP/2 SETTINGS exchange (eof=%s goaway=%r after=%r)" % (
            self.eof, self.goaway, self.after_goaway[:200])

    def pump(self, timeout):
        """Read once (up to timeout s); False once the peer has closed."""
        if self.eof:
            return False
        self.s.settimeout(max(timeout, 0.001))
        try:
            d = self.s.recv(1 << 20)
        except (socket.timeout, BlockingIOError, ssl.SSLWantReadError):
            return True
        except TLS_EOF:
            d = b""
        if not d:
            self.eof = True
            return False
        if self.goaway is not None:
            self.after_goaway += d
            return True
        try:
            events = self.c.receive_data(d)
        except h2.exceptions.ProtocolError as e:
            raise AssertionError("the server broke HTTP/2: %r (streams %r)" % (e, self.streams))
        for ev in events:
            self._on(ev)
        self.flush()
        return True

    def _stream(self, sid):
        return self.streams.setdefault(sid, H2Stream(sid))

    def _on(self, ev):
        if isinstance(ev, h2.events.ResponseReceived):
            self._stream(ev.stream_id).headers = list(ev.headers)
        elif isinstance(ev, h2.events.InformationalResponseReceived):
            self._stream(ev.stream_id).informational.append(list(ev.headers))
        elif isinstance(ev, h2.events.TrailersReceived):
            self._stream(ev.stream_id).trailers = list(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            st = self._stream(ev.stream_id)
            st.data += ev.data
            if ev.data:
                st.data_frames += 1
            if self.auto_ack:
                self.c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            else:
                st.unacked += ev.flow_controlled_length
                st.max_unacked = max(st.max_unacked, st.unacked)
        elif isinstance(ev, h2.events.StreamEnded):
            self._stream(ev.stream_id).ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self._stream(ev.stream_id).reset = ev.error_code
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = (ev.error_code, ev.last_stream_id)
        elif isinstance(ev, h2.events.RemoteSettingsChanged):
            if self.server_settings is None:
                self.server_settings = {int(k): v.new_value
                                        for k, v in ev.changed_settings.items()}
        elif isinstance(ev, h2.events.SettingsAcknowledged):
            self.settings_acked = True

    def ack(self, sid):
        st = self.streams[sid]
        if st.unacked:
            self.c.acknowledge_received_data(st.unacked, sid)
            st.unacked = 0
            self.flush()

    def wait(self, pred, timeout=None):
        end = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while not pred():
            left = end - time.monotonic()
            if left <= 0:
                return False
            if not self.pump(min(left, 0.5)) and not pred():
                return False
        return True

    # ---- requests
    def request(self, method="GET", path="/", headers=(), body=None, end=True,
                authority="localhost", scheme=None):
        """Open a stream; returns its id. body None: no DATA (END_STREAM on the
        HEADERS when end)."""
        sid = self.c.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme or self.scheme),
                (":path", path)]
        if authority is not None:
            hdrs.insert(1, (":authority", authority))
        hdrs += list(headers)
        self._stream(sid)
        self.c.send_headers(sid, hdrs, end_stream=(body is None and end))
        self.flush()
        if body is not None:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid, data, end=True, piece=None):
        off = 0
        while off < len(data):
            try:
                win = self.c.local_flow_control_window(sid)
            except h2.exceptions.StreamClosedError:
                return
            if win <= 0:
                if not self.pump(0.5):
                    raise AssertionError("connection closed while sending a body")
                st = self.streams.get(sid)
                if self.goaway is not None or (st and st.reset is not None):
                    return
                continue
            n = min(win, self.c.max_outbound_frame_size, len(data) - off, piece or len(data))
            try:
                self.c.send_data(sid, data[off:off + n])
            except h2.exceptions.ProtocolError:     # closed by the server meanwhile
                return
            off += n
            self.flush()
            self.pump(0)            # take WINDOW_UPDATEs and the answer's frames
        if end:
            try:
                self.c.end_stream(sid)
            except h2.exceptions.ProtocolError:
                return
            self.flush()

    def response(self, sid, timeout=None):
        """The stream's whole answer; fails if it is reset or never ends."""
        st = self.streams[sid]
        self.wait(lambda: st.ended or st.reset is not None or self.goaway is not None
                  or self.eof, timeout)
        assert st.ended, "stream %d not answered: %r (goaway=%r eof=%s)" % (
            sid, st, self.goaway, self.eof)
        return st

    def get(self, path, method="GET", timeout=None, **kw):
        return self.response(self.request(method, path, **kw), timeout)

    def reset(self, sid, code=h2.errors.ErrorCodes.CANCEL):
        self.c.reset_stream(sid, code)
        self.flush()

    def close(self):
        try:
            if self.goaway is None and not self.eof:
                self.c.close_connection()
                self.flush()
        except Exception:
            pass
        try:
            self.s.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


# ============================================================ raw frames

def frame(ftype, flags, sid, payload=b""):
    return len(payload).to_bytes(3, "big") + bytes([ftype, flags]) + \
        (sid & 0x7fffffff).to_bytes(4, "big") + payload


def parse_frames(data):
    """[(type, flags, stream, payload)] of the whole frames at the start of data."""
    out, i = [], 0
    while len(data) - i >= 9:
        n = int.from_bytes(data[i:i + 3], "big")
        if len(data) - i - 9 < n:
            break
        out.append((data[i + 3], data[i + 4],
                    int.from_bytes(data[i + 5:i + 9], "big") & 0x7fffffff,
                    data[i + 9:i + 9 + n]))
        i += 9 + n
    return out


def starts_with_settings(data):
    """The bytes begin like a server's HTTP/2 connection preface: a SETTINGS
    frame (not an ACK) on stream 0 of a whole number of settings."""
    if len(data) < 9:
        return False
    n = int.from_bytes(data[:3], "big")
    sid = int.from_bytes(data[5:9], "big") & 0x7fffffff
    return data[3] == SETTINGS and sid == 0 and n % 6 == 0 and not data[4] & 1


def read_until_closed(sock, timeout=5.0):
    """(bytes received, closed?) reading until EOF or timeout."""
    out = b""
    end = time.monotonic() + timeout
    while True:
        left = end - time.monotonic()
        if left <= 0:
            return out, False
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            return out, False
        except TLS_EOF:
            return out, True
        if not d:
            return out, True
        out += d


def read_some(sock, n, timeout=5.0):
    out = b""
    end = time.monotonic() + timeout
    while len(out) < n:
        left = end - time.monotonic()
        if left <= 0:
            break
        sock.settimeout(left)
        try:
            d = sock.recv(65536)
        except (socket.timeout,) + TLS_EOF:
            break
        if not d:
            break
        out += d
    return out


def headers_block(path="/ret", authority="localhost"):
    return hpack.Encoder().encode([(b":method", b"GET"), (b":scheme", b"http"),
                                   (b":path", path.encode()),
                                   (b":authority", authority.encode())])


# ============================================================ curl

def curl(*args, timeout=60):
    r = subprocess.run(["curl", "-sS", "--max-time", "40"] + list(args),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return r


def curl_gets_h2(*args):
    """True if curl got an HTTP/2 answer."""
    r = curl("-o", "/dev/null", "-w", "%{http_version}", *args)
    return r.returncode == 0 and r.stdout.strip() == b"2"


def curl_version(*args):
    """(http_version, status code) curl reports."""
    r = curl("-o", "/dev/null", "-w", "%{http_version} %{http_code}", *args)
    assert r.returncode == 0, r.stderr
    v, code = r.stdout.decode().split()
    return v, int(code)


# ============================================================ the module's daemon

class Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        if self.path.startswith("/proxy/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Connection", "keep-alive")
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Up", "chunked")
            self.end_headers()
            for piece in (b"abc", b"d" * 70000, b"e"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
            return
        body = ("upstream:%s host=%s" % (self.path, self.headers.get("Host"))).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "keep-alive")
        self.send_header("Keep-Alive", "timeout=5")
        self.send_header("X-Up", "yes")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        out = sha(body).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)


class UpstreamServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class Env:
    pass


def python_modulesdir():
    """A --modulesdir that user nobody can reach, with a copy of
    build/warren-python only (warren-php is not needed here)."""
    d = wh.make_tmpdir("warren-h2rt-")
    os.chmod(d, 0o755)
    dst = os.path.join(d, "warren-python")
    shutil.copy(os.path.join(wh.REPO, "build", "warren-python"), dst)
    os.chmod(dst, 0o755)
    return d


def make_cert(d):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", "k.pem", "-out", "c.pem", "-days", "30",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   cwd=d, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(d, "k.pem")) as f:
        key = f.read()
    with open(os.path.join(d, "c.pem")) as f:
        return key + f.read()


@pytest.fixture(scope="module")
def _h2env():
    e = Env()
    e.rt = python_modulesdir()
    e.appdir = hh.make_root("warren-h2app-")
    hh.write(e.appdir, "h2echo_wsgi.py", APP)
    e.root = hh.make_root("warren-h2share-")
    hh.write(e.root, "static/a.txt", TEXT)
    e.big = os.urandom(8 * MB)
    e.mid = os.urandom(2 * MB)
    hh.write(e.root, "static/big.bin", e.big)
    hh.write(e.root, "static/mid.bin", e.mid)
    e.certdir = wh.make_tmpdir("warren-h2cert-")
    bundle = make_cert(e.certdir)
    e.up = UpstreamServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=e.up.serve_forever, daemon=True).start()
    e.w = wh.Warren(extra_args=["--modulesdir", e.rt])
    try:
        e.w.start()
        assert th.upload(e.w, "h2", bundle) == (200, th.UPLOADED)
        e.port, e.tport = wh.free_port(), wh.free_port()
        yield e
    finally:
        try:
            if e.w.main_pid is not None:
                e.w.stop()
        finally:
            if not os.environ.get("WARREN_KEEP"):
                e.w.cleanup_dir()
            e.up.shutdown()
            e.up.server_close()
            for d in (e.rt, e.appdir, e.root, e.certdir):
                shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def env(request, _h2env):
    """The module's daemon, checked after the test like the conftest's
    fixtures (no [alert]/[emerg] in the log, no fd growth)."""
    e = _h2env
    w = e.w
    if not w.alive():
        w.main_pid = None
        w.start()
    w.baseline_all()
    w.mark_log()
    lst = request.node.__dict__.setdefault("_warren_instances", [])
    if w not in lst:
        lst.append(w)
    w.allow_alert = request.node.get_closest_marker("allow_alert") is not None
    w.allow_emerg = request.node.get_closest_marker("allow_emerg") is not None
    return e


def config(e, http2=True, ver=201, access_log=None, **http):
    """The module's configuration: a plain and a TLS listener on the same
    routes. http2=None leaves the key out (the default)."""
    settings = {"max_body_size": MAX_BODY, "idle_timeout": 30}
    if http2 is not None:
        settings["http2"] = http2
    settings.update(http)
    cfg = {
        "listeners": {
            "127.0.0.1:%d" % e.port: {"pass": "routes"},
            "127.0.0.1:%d" % e.tport: {"pass": "routes", "tls": {"certificate": "h2"}},
        },
        "routes": [
            {"match": {"uri": "/ret"}, "action": {"return": 302, "location": "/target"}},
            {"match": {"uri": "/ver"}, "action": {"return": ver}},
            {"match": {"uri": "/hdr"},
             "action": {"return": 200, "response_headers": {"X-Warren-H2": "yes",
                                                            "Cache-Control": "no-store"}}},
            {"match": {"uri": "/static/*"}, "action": {"share": e.root + "$uri"}},
            {"match": {"uri": "/proxy/*"},
             "action": {"proxy": "http://127.0.0.1:%d" % e.up.server_address[1]}},
            {"match": {"uri": "/metrics"}, "action": {"metrics": "prometheus"}},
            {"match": {"uri": "/app/*"}, "action": {"pass": "applications/echo"}},
            {"action": {"return": 200}},
        ],
        "applications": {"echo": {"type": "python", "path": e.appdir,
                                  "module": "h2echo_wsgi", "processes": 2}},
        "settings": {"http": settings},
    }
    if access_log:
        cfg["access_log"] = access_log
    return cfg


def apply(e, **kw):
    cfg = config(e, **kw)
    s, j = e.w.put("/config", cfg)
    assert (s, j) == (200, SUCCESS), "config refused: %r %r\n%s" % (
        s, j, json.dumps(cfg, indent=1))
    return cfg


def quiet(w, timeout=10.0):
    return hh.quiet(w, timeout)


def assert_h2_fields(st):
    """No connection-specific field, every name lowercase."""
    for k, v in st.headers:
        assert k == k.lower(), "uppercase field name %r in %r" % (k, st.headers)
        assert k not in CONNECTION_SPECIFIC, "connection-specific %r in %r" % (k, st.headers)


def tls_ctx(alpn):
    ctx = th.client_ctx()
    if alpn is not None:
        ctx.set_alpn_protocols(alpn)
    return ctx


# ============================================================ settings

GOOD = [("http2", True), ("http2", False),
        ("http2_max_concurrent_streams", 1), ("http2_max_concurrent_streams", 1024),
        ("http2_max_concurrent_streams", 128)]

BAD = [("http2", "yes"), ("http2", 1), ("http2", "true"), ("http2", [True]),
       ("http2_max_concurrent_streams", 0), ("http2_max_concurrent_streams", 1025),
       ("http2_max_concurrent_streams", -1), ("http2_max_concurrent_streams", "5"),
       ("http2_max_concurrent_streams", 1.5), ("http2_max_concurrent_streams", True),
       ("http2_max_concurrent_streams", 1 << 32)]


def test_settings_accepted_and_read_back(env):
    w = env.w
    for key, value in GOOD:
        cfg = apply(env, **{key: value})
        assert w.get("/config/settings/http/" + key) == (200, value), (key, value)
        assert w.config() == cfg
    # a sub-path PUT as well
    assert w.put("/config/settings/http/http2_max_concurrent_streams", 7) == (200, SUCCESS)
    assert w.get("/config/settings/http/http2_max_concurrent_streams") == (200, 7)
    assert w.put("/config/settings/http/http2", False) == (200, SUCCESS)
    assert w.get("/config/settings/http/http2") == (200, False)


@pytest.mark.parametrize("key,value", BAD, ids=["%s=%r" % b for b in BAD])
def test_settings_refused(env, key, value):
    """A value of the wrong type or out of range: 400 naming the pointer;
    the running config (with a good value for the key) is untouched."""
    w = env.w
    good = True if key == "http2" else 64
    apply(env, **{key: good})
    before = w.config_bytes()
    ptr = "/settings/http/" + key
    for method, path, body in (
            ("PUT", "/config", config(env, **{key: value})),
            ("PUT", "/config/settings/http/" + key, value)):
        r = w.request(method, path, json.dumps(body))
        assert r.status == 400, (path, r)
        j = r.json()
        assert isinstance(j.get("error"), str) and j["error"], j
        assert isinstance(j.get("detail"), str) and j["detail"], j
        assert ptr in j["detail"] or (j.get("location") or {}).get("path") == ptr, j
        assert w.config_bytes() == before
    assert w.get("/config/settings/http/" + key) == (200, good)


# ============================================================ negotiation

def test_off_by_default_then_on_plain(env):
    """Without http2 (the default) a connection starting with the preface
    gets no HTTP/2 SETTINGS; with http2 true the same bytes do; HTTP/1.1 is
    served either way."""
    apply(env, http2=None)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        data, closed = read_until_closed(s, 5.0)
    assert not starts_with_settings(data), data[:200]
    assert data == b"" or re.match(rb"HTTP/1\.[01] [45]\d\d ", data), data[:200]
    assert not curl_gets_h2("--http2-prior-knowledge", "http://127.0.0.1:%d/ret" % env.port)
    r = hh.get(env.port, "/ret")
    assert r.status == 302 and r.header("Location") == "/target", r

    apply(env, http2=True)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        data = read_some(s, 9)
    assert starts_with_settings(data), data[:200]
    r = hh.get(env.port, "/ret")
    assert r.status == 302 and r.header("Location") == "/target", r


def test_off_by_default_then_on_tls(env):
    """http2 false: ALPN never selects h2; true: it does, and a client
    offering only http/1.1, or no ALPN, still gets HTTP/1.1."""
    url = "https://127.0.0.1:%d/ret" % env.tport
    apply(env, http2=False)
    assert curl_version("-k", "--http2", url) == ("1.1", 302)
    with th.TLSConn(env.tport, tls_ctx(["h2", "http/1.1"])) as c:
        assert c.s.selected_alpn_protocol() != "h2"
        r = c.request("GET", "/ret")
        assert r.status == 302 and r.version == "HTTP/1.1", r

    apply(env, http2=True)
    assert curl_version("-k", "--http2", url) == ("2", 302)
    with th.TLSConn(env.tport, tls_ctx(["h2", "http/1.1"])) as c:
        assert c.s.selected_alpn_protocol() == "h2"
    for alpn in (["http/1.1"], None):
        with th.TLSConn(env.tport, tls_ctx(alpn)) as c:
            assert c.s.selected_alpn_protocol() in (None, "http/1.1"), alpn
            r = c.request("GET", "/ret")
            assert r.status == 302 and r.version == "HTTP/1.1", (alpn, r)
            r = c.request("GET", "/hdr")
            assert r.status == 200, (alpn, r)


def test_prior_knowledge_and_http11_side_by_side(env):
    apply(env, http2=True)
    assert curl_version("--http2-prior-knowledge",
                        "http://127.0.0.1:%d/ret" % env.port) == ("2", 302)
    assert curl_version("http://127.0.0.1:%d/ret" % env.port) == ("1.1", 302)
    with H2Client(env.port) as c:
        # the server's SETTINGS announce the default limit
        mcs = c.server_settings.get(h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS)
        assert mcs == 128, c.server_settings
        st = c.get("/ret")
        assert st.status == 302 and st.header("location") == "/target", st
        with hh.Conn(env.port) as h1:        # HTTP/1.1 meanwhile on the same listener
            r = h1.request("GET", "/ret")
            assert r.status == 302 and r.version == "HTTP/1.1", r
        st = c.get("/hdr")
        assert st.status == 200, st
    # the preface may come in pieces; an HTTP/1.1 method starting with "P" too
    for split in (3, 16):
        with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
            s.sendall(PREFACE[:split])
            time.sleep(0.2)
            s.sendall(PREFACE[split:] + frame(SETTINGS, 0, 0))
            assert starts_with_settings(read_some(s, 9)), split
    with hh.Conn(env.port) as h1:
        h1.send(b"P")
        time.sleep(0.2)
        h1.send(b"OST /app/p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nab")
        r = h1.read_response()
        assert r.status == 200 and json.loads(r.body)["len"] == 2, r


def test_upgrade_h2c_is_not_taken(env):
    """Upgrade: h2c is answered as HTTP/1.1 (never 101) and the connection
    stays HTTP/1.1."""
    apply(env, http2=True)
    with hh.Conn(env.port) as c:
        r = c.request("GET", "/ret", [("Connection", "Upgrade, HTTP2-Settings"),
                                      ("Upgrade", "h2c"),
                                      ("HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA")])
        assert r.status == 302 and r.version == "HTTP/1.1", r
        assert (r.header("Upgrade") or "").lower() != "h2c", r
        r = c.request("GET", "/hdr")
        assert r.status == 200 and r.version == "HTTP/1.1", r
    # curl's own h2c upgrade attempt stays on HTTP/1.1
    assert curl_version("--http2", "http://127.0.0.1:%d/ret" % env.port) == ("1.1", 302)
    # and HTTP/2 is nevertheless on for a client that knows (not a vacuous pass)
    assert curl_version("--http2-prior-knowledge",
                        "http://127.0.0.1:%d/ret" % env.port) == ("2", 302)


# ============================================================ route actions

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_return_share_and_headers(env, tls):
    apply(env, http2=True)
    port = env.tport if tls else env.port
    with H2Client(port, tls=tls) as c:
        if tls:
            assert c.alpn == "h2"
        st = c.get("/ret")
        assert st.status == 302 and st.header("location") == "/target", st
        h1 = hh.get(env.port, "/ret")
        if h1.header("Content-Length") is not None:
            assert st.header("content-length") == h1.header("Content-Length"), (st, h1)
            assert len(st.body) == int(h1.header("Content-Length"))

        st = c.get("/hdr")
        assert st.status == 200, st
        assert st.header("x-warren-h2") == "yes" and st.header("cache-control") == "no-store", st

        st = c.get("/static/a.txt")
        assert st.status == 200 and st.body == TEXT, st
        assert st.header("content-length") == str(len(TEXT)), st
        assert (st.header("content-type") or "").startswith("text/plain"), st
        assert st.header("etag") and st.header("last-modified"), st

        st = c.get("/static/a.txt", method="HEAD")
        assert st.status == 200 and st.header("content-length") == str(len(TEXT)), st
        assert st.body == b"" and st.data_frames == 0, st

        st = c.get("/static/nope.txt")
        assert st.status == 404, st

        for s in c.streams.values():
            assert_h2_fields(s)
        assert c.goaway is None


def test_proxy(env):
    apply(env, http2=True)
    with H2Client(env.port) as c:
        st = c.get("/proxy/hello?x=1")
        assert st.status == 200, st
        assert st.body == hh.get(env.port, "/proxy/hello?x=1").body, st
        assert st.body.startswith(b"upstream:/proxy/hello?x=1 host="), st
        assert st.header("x-up") == "yes", st
        st = c.get("/proxy/hello", method="HEAD")
        assert st.status == 200 and st.header("x-up") == "yes", st
        assert st.body == b"" and st.data_frames == 0, st
        st = c.get("/proxy/chunked")
        assert st.status == 200 and st.header("x-up") == "chunked", st
        assert st.body == b"abc" + b"d" * 70000 + b"e", len(st.body)
        body = os.urandom(300000)
        st = c.get("/proxy/post", method="POST", body=body,
                   headers=[("content-length", str(len(body)))])
        assert st.status == 200 and st.body == sha(body).encode(), st
        for s in c.streams.values():
            assert_h2_fields(s)


def test_wsgi_app_and_metrics(env):
    apply(env, http2=True)
    with H2Client(env.port) as c:
        st = c.get("/app/x/y?q=1&r=2", headers=[("x-test", "t1")])
        assert st.status == 200, st
        j = st.json()
        assert j["REQUEST_METHOD"] == "GET" and j["PATH_INFO"] == "/app/x/y", j
        assert j["QUERY_STRING"] == "q=1&r=2" and j["HTTP_X_TEST"] == "t1", j
        assert j["SERVER_PROTOCOL"] == "HTTP/2.0", j
        assert j["scheme"] == "http" and j["len"] == 0, j
        assert st.header("x-app") == "Echo" and st.header("content-type") == "application/json"
        st = c.get("/app/head", method="HEAD")
        assert st.status == 200 and st.header("x-app") == "Echo", st
        assert st.body == b"" and st.data_frames == 0, st
        st = c.get("/app/stream")
        assert st.status == 200 and st.body == b"part1-part2-part3", st
        assert st.header("x-streamed") == "Yes", st
        st = c.get("/metrics")
        assert st.status == 200, st
        assert (st.header("content-type") or "").startswith("text/plain"), st
        assert b"warren_requests_total" in st.body, st
        for s in c.streams.values():
            assert_h2_fields(s)


# ============================================================ request mapping

def test_request_mapping(env):
    apply(env, http2=True)
    with H2Client(env.port) as c:
        # :authority is the Host when there is no host field
        st = c.get("/app/auth", authority="h2.example:8443")
        assert st.status == 200 and st.json()["HTTP_HOST"] == "h2.example:8443", st
        # several cookie fields are one Cookie
        st = c.get("/app/cookie", headers=[("cookie", "a=1"), ("x-test", "c"),
                                           ("cookie", "b=2")])
        assert st.status == 200 and st.json()["HTTP_COOKIE"] == "a=1; b=2", st
        # method, path, query as sent (as the app sees them over HTTP/1.1)
        st = c.get("/app/m/x%20y?a=1&b=%20", method="PUT", body=b"",
                   headers=[("content-length", "0")])
        j = st.json()
        j1 = json.loads(hh.get(env.port, "/app/m/x%20y?a=1&b=%20", method="PUT").body)
        assert (j["REQUEST_METHOD"], j["QUERY_STRING"]) == ("PUT", "a=1&b=%20"), j
        # the application is told the protocol: HTTP/2.0 here, HTTP/1.1 there
        assert (j["SERVER_PROTOCOL"], j1["SERVER_PROTOCOL"]) == ("HTTP/2.0", "HTTP/1.1"), (j, j1)
        assert j["PATH_INFO"] == j1["PATH_INFO"] and j["PATH_INFO"].startswith("/app/m/x"), \
            (j, j1)
        # a body with content-length
        body = os.urandom(100000)
        st = c.get("/app/cl", method="POST", body=body,
                   headers=[("content-length", str(len(body)))])
        j = st.json()
        assert (j["len"], j["sha256"]) == (len(body), sha(body)), j
        assert j["CONTENT_LENGTH"] == str(len(body)), j
        # a body without content-length, in several DATA frames
        body = os.urandom(50000)
        sid = c.request("POST", "/app/nocl", body=body[:1000], end=False)
        c.send_body(sid, body[1000:20000], end=False)
        c.send_body(sid, body[20000:], end=True, piece=7000)
        st = c.response(sid)
        j = st.json()
        assert st.status == 200 and (j["len"], j["sha256"]) == (len(body), sha(body)), j
    with H2Client(env.tport, tls=True) as c:
        st = c.get("/app/tls?z=9", authority="localhost")
        j = st.json()
        assert j["scheme"] == "https" and j["QUERY_STRING"] == "z=9", j
        assert j["SERVER_PROTOCOL"] == "HTTP/2.0", j
        assert j["HTTP_HOST"] == "localhost", j


def test_request_body_over_max_body_size_is_413(env):
    apply(env, http2=True)
    with H2Client(env.port) as c:
        sid = c.request("POST", "/app/echo", end=False,
                        headers=[("content-length", str(MAX_BODY + 1))])
        st = c.streams[sid]
        c.wait(lambda: st.headers is not None and (st.ended or st.reset is not None))
        assert st.status == 413, st
        assert_h2_fields(st)


# ============================================================ big bodies

def test_big_static_file_byte_exact(env):
    apply(env, http2=True)
    with H2Client(env.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20},
                  conn_window=16 * MB) as c:
        st = c.get("/static/big.bin", timeout=60)
        assert st.status == 200 and st.header("content-length") == str(len(env.big)), st
        assert len(st.body) == len(env.big) and sha(st.body) == sha(env.big)
    # curl over TLS too
    out = os.path.join(env.certdir, "big.out")
    r = curl("-k", "--http2", "-o", out, "-w", "%{http_version} %{http_code}",
             "https://127.0.0.1:%d/static/big.bin" % env.tport)
    assert r.returncode == 0 and r.stdout == b"2 200", (r.stdout, r.stderr)
    with open(out, "rb") as f:
        got = f.read()
    os.unlink(out)
    assert sha(got) == sha(env.big)


def test_big_post_echoed_byte_exact(env):
    apply(env, http2=True)
    body = os.urandom(2 * MB)
    for tls in (False, True):
        with H2Client(env.tport if tls else env.port, tls=tls,
                      settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 20},
                      conn_window=8 * MB) as c:
            st = c.get("/app/echo", method="POST", body=body, timeout=60,
                       headers=[("content-length", str(len(body)))])
            assert st.status == 200, st
            assert len(st.body) == len(body) and sha(st.body) == sha(body), (tls, len(st.body))
            # no content-length: DATA frames until END_STREAM
            st = c.get("/app/echo", method="POST", body=body, timeout=60)
            assert st.status == 200, st
            assert len(st.body) == len(body) and sha(st.body) == sha(body), (tls, len(st.body))


def test_small_window_slow_reader(env):
    """INITIAL_WINDOW_SIZE 16384 and a reader that acknowledges only when its
    window is full (or nothing came for a while), after a pause: the server
    never sends past the window and the whole 2 MiB arrives."""
    apply(env, http2=True)
    win = 16384
    with H2Client(env.port, settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: win},
                  auto_ack=False) as c:
        sid = c.request("GET", "/static/mid.bin")
        st = c.streams[sid]
        end = time.monotonic() + 60
        stalls = 0
        while not st.ended and st.reset is None and not c.eof and time.monotonic() < end:
            got = len(st.data)
            c.pump(0.2)
            if st.unacked >= win or (len(st.data) == got and st.unacked):
                if st.unacked >= win:
                    stalls += 1
                time.sleep(0.005)
                c.ack(sid)
        assert st.ended, st
        assert st.status == 200 and sha(st.body) == sha(env.mid), (st.status, len(st.data))
        assert st.max_unacked <= win, st.max_unacked
        assert stalls > 0
        # the connection still serves
        c.auto_ack = True
        assert c.get("/ret").status == 302


# ============================================================ streams

@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_fifty_concurrent_streams(env, tls):
    apply(env, http2=True)
    with H2Client(env.tport if tls else env.port, tls=tls, timeout=30) as c:
        sids = {c.request("GET", "/app/n/%d" % i, end=True): i for i in range(50)}
        ok = c.wait(lambda: all(c.streams[s].ended or c.streams[s].reset is not None
                                for s in sids), 30)
        assert ok, [c.streams[s] for s in sids if not c.streams[s].ended][:3]
        for s, i in sids.items():
            st = c.streams[s]
            assert st.status == 200, st
            assert st.json()["PATH_INFO"] == "/app/n/%d" % i, st


def hold_two_then_three(c):
    """Open two streams held open (a POST whose 5-byte body is not sent
    yet) and three more GETs: (held ids, extra ids)."""
    held = [c.request("POST", "/app/echo", end=False,
                      headers=[("content-length", "5")]) for _ in range(2)]
    extra = [c.request("GET", "/app/more%d" % i) for i in range(3)]
    return held, extra


def finish_held(c, held):
    for i, s in enumerate(held):
        c.send_body(s, b"held%d" % i)
    for i, s in enumerate(held):
        st = c.response(s)
        assert st.status == 200 and st.body == b"held%d" % i, st


def test_streams_beyond_the_limit_refused_before_settings_ack(env):
    """http2_max_concurrent_streams 2, five streams sent right after the
    preface (the client has not acknowledged the server's SETTINGS yet):
    the three past the limit get RST_STREAM(REFUSED_STREAM), the first two
    are answered, the connection goes on."""
    apply(env, http2=True, http2_max_concurrent_streams=2)
    with H2Client(env.port, handshake=False) as c:
        # nothing read yet: no SETTINGS ACK has gone out
        held, extra = hold_two_then_three(c)
        mcs = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
        ok = c.wait(lambda: c.goaway is not None or c.eof
                    or all(c.streams[s].reset is not None or c.streams[s].ended
                           for s in extra), 10)
        assert c.server_settings and c.server_settings.get(mcs) == 2, c.server_settings
        assert c.goaway is None and not c.eof, (c.goaway, c.eof)
        assert ok, [c.streams[s] for s in extra]
        for s in extra:
            assert c.streams[s].reset == h2.errors.ErrorCodes.REFUSED_STREAM, c.streams[s]
        finish_held(c, held)
        assert c.goaway is None
        st = c.get("/app/after")
        assert st.status == 200 and st.json()["PATH_INFO"] == "/app/after", st


def test_streams_beyond_the_limit_after_settings_ack(env):
    """With the server's SETTINGS (MAX_CONCURRENT_STREAMS 2) acknowledged,
    two streams at once are answered; a client that opens a third at once
    breaks the protocol: GOAWAY(PROTOCOL_ERROR) and the connection closes
    (nghttp2's rule). A new connection is served."""
    apply(env, http2=True, http2_max_concurrent_streams=2)
    mcs = h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS
    with H2Client(env.port) as c:
        assert c.server_settings.get(mcs) == 2, c.server_settings
        # within the limit: both answered, twice over
        for _ in range(2):
            held = [c.request("POST", "/app/echo", end=False,
                              headers=[("content-length", "5")]) for _ in range(2)]
            finish_held(c, held)
        # past it (the client's own limit lifted)
        c.c.remote_settings[mcs] = 1000
        c.c.remote_settings.acknowledge()
        hold_two_then_three(c)
        c.wait(lambda: c.eof, 10)
        assert c.goaway is not None, "no GOAWAY (eof %s): %r" % (c.eof, c.streams)
        assert c.goaway[0] == h2.errors.ErrorCodes.PROTOCOL_ERROR, c.goaway
        assert c.eof, "connection left open after GOAWAY"
    with H2Client(env.port) as c:
        st = c.get("/app/new")
        assert st.status == 200 and st.json()["PATH_INFO"] == "/app/new", st


@pytest.mark.parametrize("tls", [False, True], ids=["h2c", "h2-tls"])
def test_cancel_mid_download_keeps_connection(env, tls):
    apply(env, http2=True)
    with H2Client(env.tport if tls else env.port, tls=tls) as c:
        sid = c.request("GET", "/static/big.bin")
        st = c.streams[sid]
        assert c.wait(lambda: len(st.data) >= 100000 or st.ended), st
        assert not st.ended and st.status == 200, st
        c.reset(sid, h2.errors.ErrorCodes.CANCEL)
        st2 = c.get("/static/a.txt")
        assert st2.status == 200 and st2.body == TEXT, st2
        st3 = c.get("/ret")
        assert st3.status == 302
        assert c.goaway is None and not c.eof
        assert len(st.data) < len(env.big)


# ============================================================ connection life

def test_status_counts_one_connection_three_requests(env):
    w = env.w
    apply(env, http2=True)
    before = quiet(w)
    with H2Client(env.port) as c:
        for p in ("/ret", "/hdr", "/static/a.txt"):
            assert c.get(p).status in (200, 302)
        st = hh.wait_status(w, lambda s: s["requests"]["total"] >= before["requests"]["total"] + 3)
        assert st["connections"]["accepted"] == before["connections"]["accepted"] + 1, (before, st)
        assert st["requests"]["total"] == before["requests"]["total"] + 3, (before, st)
        assert st["connections"]["closed"] == before["connections"]["closed"], (before, st)
    st = hh.wait_status(w, lambda s: s["connections"]["closed"] == before["connections"]["closed"] + 1)
    assert st["connections"]["closed"] == before["connections"]["closed"] + 1, (before, st)
    assert st["connections"]["accepted"] == before["connections"]["accepted"] + 1, (before, st)
    assert st["requests"]["total"] == before["requests"]["total"] + 3, (before, st)


def test_idle_connection_gets_goaway(env):
    apply(env, http2=True, idle_timeout=1)
    with H2Client(env.port) as c:
        assert c.get("/ret").status == 302
        t0 = time.monotonic()
        c.wait(lambda: c.eof, 10)
        assert c.goaway is not None, "no GOAWAY within %.1fs (eof=%s)" % (
            time.monotonic() - t0, c.eof)
        assert c.goaway[0] == h2.errors.ErrorCodes.NO_ERROR, c.goaway
        assert c.eof, "GOAWAY but the connection was not closed"


BAD_FRAMES = [
    ("headers-on-even-stream",
     lambda: frame(HEADERS, 0x5, 2, headers_block())),
    ("data-on-stream-0", lambda: frame(DATA, 0, 0, b"xyz")),
    ("settings-bad-length", lambda: frame(SETTINGS, 0, 0, b"\x00\x03\x00\x00\x00")),
    ("ping-on-stream-1", lambda: frame(PING, 0, 1, b"12345678")),
    ("window-update-zero", lambda: frame(WINDOW_UPDATE, 0, 0, b"\x00\x00\x00\x00")),
    ("continuation-alone", lambda: frame(CONTINUATION, 0x4, 1, headers_block())),
]


@pytest.mark.parametrize("make", [b[1] for b in BAD_FRAMES], ids=[b[0] for b in BAD_FRAMES])
def test_protocol_error_gets_goaway(env, make):
    apply(env, http2=True)
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        assert starts_with_settings(read_some(s, 9)), "not served as HTTP/2"
        try:
            s.sendall(make())
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_closed(s, 5.0)
    goaways = [f for f in parse_frames(data) if f[0] == GOAWAY]
    assert goaways, "no GOAWAY: %r" % (parse_frames(data),)
    code = int.from_bytes(goaways[-1][3][4:8], "big")
    assert code != 0, goaways
    assert closed, "connection left open after GOAWAY"
    # the daemon is fine: the next connection is served
    with H2Client(env.port) as c:
        assert c.get("/ret").status == 302


def test_unfinished_header_block_times_out(env):
    """A HEADERS frame without END_HEADERS whose CONTINUATION never comes:
    after header_read_timeout the server sends GOAWAY(NO_ERROR) and closes;
    the next connection is served."""
    apply(env, http2=True, header_read_timeout=1)
    block = headers_block("/ret")
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        assert starts_with_settings(read_some(s, 9)), "not served as HTTP/2"
        s.sendall(frame(HEADERS, 0x1, 1, block[:len(block) // 2]))   # END_STREAM only
        data, closed = read_until_closed(s, 10.0)
    frames = parse_frames(data)
    assert not [f for f in frames if f[0] == HEADERS], frames      # no answer
    goaways = [f for f in frames if f[0] == GOAWAY]
    assert goaways, "no GOAWAY (closed %s): %r" % (closed, frames)
    assert int.from_bytes(goaways[-1][3][4:8], "big") == 0, goaways
    assert closed, "connection left open after GOAWAY"
    with H2Client(env.port) as c:
        assert c.get("/ret").status == 302


def test_reload_keeps_open_connection(env):
    """A reload with an HTTP/2 connection open, a download in flight on it:
    the download completes, a new stream is answered (old or new config),
    a new connection has the new config."""
    apply(env, http2=True, ver=201)
    with H2Client(env.port) as c:
        assert c.get("/ver").status == 201
        sid = c.request("GET", "/static/big.bin")
        st = c.streams[sid]
        assert c.wait(lambda: len(st.data) >= 100000 or st.ended), st
        apply(env, http2=True, ver=202)
        st2 = c.get("/ver")
        assert st2.status in (201, 202), st2
        st = c.response(sid, 60)
        assert st.status == 200 and sha(st.body) == sha(env.big), len(st.body)
        assert c.goaway is None, c.goaway
    with H2Client(env.port) as c2:
        assert c2.get("/ver").status == 202


def test_access_log_says_http2(env):
    path = os.path.join(env.w.dir, "h2access.log")
    apply(env, http2=True, access_log=path)
    with H2Client(env.port) as c:
        assert c.get("/ret?q=1").status == 302
    assert hh.get(env.port, "/hdr").status == 200

    def lines():
        try:
            with open(path) as f:
                ls = f.read().splitlines()
        except FileNotFoundError:
            return None
        return ls if len(ls) >= 2 else None
    ls = wh.wait_for(lines, 5.0, 0.05)
    assert ls, "access log: %r" % (ls,)
    assert any('"GET /ret?q=1 HTTP/2.0"' in ln for ln in ls), ls
    assert any('"GET /hdr HTTP/1.1"' in ln for ln in ls), ls


# ============================================================ hostile clients

def test_rapid_reset_costs_nothing_lasting(env):
    """Streams opened and reset at once, thousands in one write (the 2023
    "rapid reset" attack): nghttp2's rate limit may end the connection with
    GOAWAY, or it survives; either way no stream is left behind (the
    connection counts go back to zero once it closes) and the daemon serves
    the next client."""
    apply(env, http2=True)
    before = hh.status(env.w)["requests"]["total"]
    block = headers_block("/app/x")
    burst = b"".join(frame(HEADERS, 0x5, sid, block)                 # END_STREAM|END_HEADERS
                     + frame(RST_STREAM, 0, sid, (8).to_bytes(4, "big"))  # CANCEL
                     for sid in range(1, 2 * 3000, 2))
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        assert starts_with_settings(read_some(s, 9)), "not served as HTTP/2"
        try:
            s.sendall(burst)
        except (BrokenPipeError, ConnectionResetError):
            pass
        # it is still ours to close: whatever the server said, it said it
        read_until_closed(s, 2.0)
    quiet(env.w)
    # a stream reset before its answer may or may not have become a request
    assert hh.status(env.w)["requests"]["total"] - before <= 3000
    with H2Client(env.port) as c:
        assert c.get("/app/after").status == 200


def test_continuation_flood_is_cut(env):
    """A header block spread over endless CONTINUATION frames (CVE-2024-27316
    and kin) is a connection error long before memory matters."""
    apply(env, http2=True)
    enc = hpack.Encoder()
    first = enc.encode([(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/ret"),
                        (b":authority", b"localhost")])
    crumb = enc.encode([(b"x-junk", b"y" * 100)])
    with socket.create_connection(("127.0.0.1", env.port), timeout=5) as s:
        s.sendall(PREFACE + frame(SETTINGS, 0, 0))
        assert starts_with_settings(read_some(s, 9)), "not served as HTTP/2"
        try:
            s.sendall(frame(HEADERS, 0x1, 1, first))
            for _ in range(2000):
                s.sendall(frame(CONTINUATION, 0, 1, crumb))
        except (BrokenPipeError, ConnectionResetError):
            pass
        data, closed = read_until_closed(s, 5.0)
    frames = parse_frames(data)
    assert not [f for f in frames if f[0] == HEADERS], frames       # never answered
    goaways = [f for f in frames if f[0] == GOAWAY]
    assert closed and goaways, (closed, frames[-3:])
    quiet(env.w)
    with H2Client(env.port) as c:
        assert c.get("/ret").status == 302


def test_header_list_over_the_limit_is_431(env):
    """Fields past large_header_buffers * large_header_buffer_size are not kept:
    the request is answered 431, as on HTTP/1.1, and the connection serves on."""
    apply(env, http2=True, large_header_buffer_size=2048, large_header_buffers=2)
    with H2Client(env.port) as c:
        big = [("x-f%d" % i, "v" * 500) for i in range(20)]          # ~10 KiB > 4 KiB
        st = c.get("/ver", headers=big)
        assert st.status == 431, st
        assert c.get("/ver").status == 201


def test_client_gone_mid_application_request(env):
    """A client that drops its connection while a stream waits for an
    application: the stream's request is cut like a departed HTTP/1.1 client's,
    the worker serves the next one, nothing is left open."""
    apply(env, http2=True)
    c = H2Client(env.port)
    sids = [c.request("POST", "/app/echo", end=False, headers=[("content-length", "10")])
            for _ in range(5)]
    c.send_body(sids[0], b"12345", end=False)
    c.s.close()                          # gone, bodies half sent
    quiet(env.w)
    with H2Client(env.port) as c2:
        st = c2.get("/app/echo", method="POST", body=b"0123456789")
        assert (st.status, st.body) == (200, b"0123456789"), st


def test_graceful_stop_finishes_open_stream(env):
    """SIGQUIT (graceful stop) with a stream in flight: a GOAWAY shutdown
    notice at once, the stream still answered whole, the last GOAWAY, then
    the connection closes and the daemon exits. (The module's daemon starts
    again for the next test.)"""
    apply(env, http2=True)
    with H2Client(env.port) as c:
        assert c.get("/ver").status == 201
        sid = c.request("GET", "/app/slow?1.5")
        assert c.get("/ver").status == 201      # frames go in order: sid is taken
        os.kill(env.w.main_pid, signal.SIGQUIT)
        assert c.wait(lambda: c.goaway is not None, 5), "no GOAWAY"
        # first a shutdown notice (RFC 9113 §6.8: the last stream id is 2^31-1,
        # streams on their way are still taken) ...
        assert c.goaway == (h2.errors.ErrorCodes.NO_ERROR, 2 ** 31 - 1), c.goaway
        # the client library stops parsing at GOAWAY: read the rest as frames
        # (the app sleeps 1.5 s, so its answer comes well after the GOAWAY)
        assert c.wait(lambda: c.eof, 10), "connection left open"
        assert c.streams[sid].headers is None, "answered before the GOAWAY"
        frames = [f for f in parse_frames(c.after_goaway) if f[2] == sid]
        kinds = [f[0] for f in frames]
        assert HEADERS in kinds and RST_STREAM not in kinds, frames
        head = dict(c.c.decoder.decode(frames[kinds.index(HEADERS)][3], raw=True))
        assert head[b":status"] == b"200", head
        assert frames[-1][1] & 0x1, "the stream did not end: %r" % (frames,)
        # ... then the last GOAWAY, naming the last stream taken
        last = [f for f in parse_frames(c.after_goaway) if f[0] == GOAWAY]
        assert last, "no final GOAWAY"
        last_id = int.from_bytes(last[-1][3][:4], "big") & 0x7fffffff
        code = int.from_bytes(last[-1][3][4:8], "big")
        assert (code, last_id >= sid, last_id < 2 ** 31 - 1) == (0, True, True), last
    assert wh.wait_for(lambda: not env.w.alive(), 10), "daemon still running"

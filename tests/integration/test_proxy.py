"""The "proxy" route action: requests forwarded to an HTTP server the test
starts, on loopback TCP and on a unix socket; 502 when nothing listens;
a slow client does not make the router buffer the response."""

import hashlib
import http.server
import json
import os
import socket
import socketserver
import threading
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

MB = 1024 * 1024


def pattern(n):
    block = bytes(range(256)) * 256
    return (block * (n // len(block) + 1))[:n]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def _reply(self, body, extra=()):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path.startswith("/headers"):
            self._reply(json.dumps([self.requestline] + list(self.headers.items())).encode())
        elif self.path.startswith("/chunked"):
            self.send_response(201)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("X-Up", "yes")
            self.end_headers()
            for piece in (b"abc", b"d" * 70000, b"e"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self._reply(b"upstream says hi", [("X-Up", "yes")])

    do_HEAD = do_GET

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/info"):
            # What arrived: the framing fields and the body's digest.
            self._reply(json.dumps({
                "length": self.headers.get("Content-Length"),
                "te": self.headers.get("Transfer-Encoding"),
                "got": len(body), "sha": hashlib.sha256(body).hexdigest()}).encode())
            return
        self._reply(hashlib.sha256(body).hexdigest().encode())


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        sock, _ = self.socket.accept()
        return sock, ("unix", 0)


def serve(server):
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    return server


@pytest.fixture
def upstream():
    s = serve(TCPServer(("127.0.0.1", 0), Handler))
    yield s.server_address[1]
    s.shutdown()
    s.server_close()


@pytest.fixture
def unix_upstream():
    d = hh.make_root("warren-proxy-")
    path = os.path.join(d, "up.sock")
    s = serve(UnixServer(path, Handler))
    os.chmod(path, 0o777)              # the router runs as nobody
    yield path
    s.shutdown()
    s.server_close()


def proxy_to(w, target):
    return hh.setup(w, [{"match": {"uri": "/here"}, "action": {"return": 204}},
                        {"action": {"proxy": target}}])


def test_proxy_to_loopback(warren, upstream):
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    r = hh.get(port, "/anything?q=1")
    assert r.status == 200, r
    assert r.body == b"upstream says hi"
    assert r.header("X-Up") == "yes"
    r = hh.get(port, "/here")
    assert r.status == 204
    r = hh.get(port, "/headers/x?y=%20z", host="site.example",
               headers={"X-A": "1", "Keep-Alive": "timeout=5"})
    got = json.loads(r.body)
    assert got[0] == "GET /headers/x?y=%20z HTTP/1.1"
    fields = [tuple(f) for f in got[1:]]
    assert ("Host", "site.example") in fields
    assert ("X-A", "1") in fields
    assert all(k.lower() != "keep-alive" for k, _ in fields)
    assert all(k.lower() != "x-forwarded-for" for k, _ in fields)   # as Unit


def test_proxy_bodies_chunked_keepalive_head(warren, upstream):
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    body = os.urandom(3 * MB)
    with hh.Conn(port, timeout=30) as c:
        r = c.request("POST", "/up", body=body)
        assert r.body == hashlib.sha256(body).hexdigest().encode()
        r = c.request("GET", "/chunked")
        assert r.status == 201
        assert r.header("X-Up") == "yes"
        assert r.body == b"abc" + b"d" * 70000 + b"e"
        r = c.request("HEAD", "/")
        assert r.status == 200 and r.header("Content-Length") == "16"
        r = c.request("GET", "/")
        assert r.body == b"upstream says hi"


def test_proxy_over_unix_socket(warren, unix_upstream):
    port = proxy_to(warren, "http://unix:" + unix_upstream)
    r = hh.get(port, "/")
    assert r.status == 200, r
    assert r.body == b"upstream says hi"
    r = hh.get(port, "/x", method="POST", body=b"hello")
    assert r.body == hashlib.sha256(b"hello").hexdigest().encode()


class TCP6Server(TCPServer):
    address_family = socket.AF_INET6


@pytest.mark.skipif(not wh.ipv6_loopback_ok(), reason="no IPv6 loopback")
def test_proxy_to_ipv6_loopback(warren):
    s = serve(TCP6Server(("::1", 0), Handler))
    try:
        port = proxy_to(warren, "http://[::1]:%d" % s.server_address[1])
        r = hh.get(port, "/", version="HTTP/1.0", host=None)
        assert r.status == 200 and r.body == b"upstream says hi"
        r = hh.get(port, "/headers", version="HTTP/1.0", host=None)
        # No Host from the client: the upstream gets the proxy address.
        assert ["Host", "[::1]:%d" % s.server_address[1]] in json.loads(r.body)[1:]
    finally:
        s.shutdown()
        s.server_close()


def test_proxy_nothing_listening_is_502(warren):
    w = warren
    dead = wh.free_port()
    port = proxy_to(w, "http://127.0.0.1:%d" % dead)
    assert hh.get(port, "/").status == 502
    port2 = hh.setup(w, [{"action": {"proxy": "http://unix:/nonexistent/warren.sock"}}])
    assert hh.get(port2, "/").status == 502
    assert hh.get(port2, "/").status == 502


def test_upstream_closing_without_answer_is_502(warren):
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(8)

    def rude():
        while True:
            try:
                s, _ = lst.accept()
            except OSError:
                return
            s.recv(65536)
            s.close()
    threading.Thread(target=rude, daemon=True).start()
    port = proxy_to(warren, "http://127.0.0.1:%d" % lst.getsockname()[1])
    try:
        assert hh.get(port, "/").status == 502
    finally:
        lst.close()


def rss_kb(pid):
    return int(wh.proc_status(pid)["VmRSS"].split()[0])


def test_slow_client_does_not_make_the_router_buffer(warren):
    """A 100 MB response to a client that stops reading: the upstream is
    held back (it can only have sent what the socket buffers and the
    router's bounded per-request buffer hold) and the router's memory stays
    flat; then the whole body arrives intact."""
    w = warren
    total = 100 * MB
    block = pattern(MB)
    sent = [0]
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)

    def big():
        s, _ = lst.accept()
        s.recv(65536)
        s.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
        for _ in range(total // MB):
            s.sendall(block)
            sent[0] += MB
        s.close()
    threading.Thread(target=big, daemon=True).start()
    port = proxy_to(w, "http://127.0.0.1:%d" % lst.getsockname()[1])
    router = w.pid("router")
    before = rss_kb(router)

    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    c.connect(("127.0.0.1", port))
    c.settimeout(30)
    c.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.recv(65536)
    # Wait until the pipeline is full: the upstream stops making progress.
    last, stable = -1, 0
    while stable < 10:
        time.sleep(0.05)
        stable = stable + 1 if sent[0] == last else 0
        last = sent[0]
    peak = rss_kb(router)
    ahead = sent[0]
    assert ahead < 40 * MB, "the router took %d MB from upstream" % (sent[0] // MB)
    assert peak - before < 20 * 1024, "router RSS grew %d KB" % (peak - before)

    # Now read it all: it is complete and intact.
    buf = bytearray(got)
    while b"\r\n\r\n" not in buf:
        buf += c.recv(65536)
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    h = hashlib.sha256(rest)
    n = len(rest)
    while n < total:
        d = c.recv(1 << 20)
        assert d, "cut at %d" % n
        h.update(d)
        n += len(d)
    c.close()
    lst.close()
    assert n == total
    assert h.digest() == hashlib.sha256(block * (total // MB)).digest()
    print("router RSS before %d KB, while blocked %d KB, upstream ahead by %d MB"
          % (before, peak, ahead // MB))


# ---- chunked request bodies: read whole, sent on with a Content-Length

def chunked(body, sizes=(1, 7, 300, 4096, 65536, 100003)):
    """body as a chunked coding, in pieces of varying sizes (an extension
    and a trailer included: both are dropped)."""
    out, i, k = [], 0, 0
    while i < len(body):
        piece = body[i:i + sizes[k % len(sizes)]]
        ext = b";x=1" if k == 1 else b""
        out.append(b"%x%s\r\n%s\r\n" % (len(piece), ext, piece))
        i += len(piece)
        k += 1
    out.append(b"0\r\nX-Trailer: t\r\n\r\n")
    return b"".join(out)


def chunked_head(path="/info", extra=b""):
    return (b"POST %s HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n%s\r\n"
            % (path.encode(), extra))


def body_files(pid):
    """The router's open files in its request-body directory."""
    out = {}
    for fd, target in (wh.proc_fds(pid) or {}).items():
        if "/bodies/" in target:
            out[fd] = target
    return out


def test_chunked_body_small_goes_up_with_its_length(warren, upstream):
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    body = os.urandom(5000)                       # under body_buffer_size
    with hh.Conn(port, timeout=30) as c:
        # Pipelined behind it: the next request is served after it.
        c.send(chunked_head() + chunked(body) + hh.build("GET", "/"))
        r = c.read_response()
        assert r.status == 200, r
        got = json.loads(r.body)
        assert got == {"length": "5000", "te": None, "got": 5000,
                       "sha": hashlib.sha256(body).hexdigest()}
        r = c.read_response()
        assert r.body == b"upstream says hi"
        # An empty chunked body: Content-Length 0.
        c.send(chunked_head() + b"0\r\n\r\n")
        got = json.loads(c.read_response().body)
        assert got["length"] == "0" and got["got"] == 0


def test_chunked_body_large_goes_through_an_unlinked_file(warren, upstream):
    w = warren
    port = hh.setup(w, [{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                    settings={"http": {"body_buffer_size": 1024}})
    router = w.pid("router")
    body = os.urandom(6 * MB + 11)
    data = chunked(body)
    with hh.Conn(port, timeout=60) as c:
        c.send(chunked_head() + data[:2 * MB])
        # Past body_buffer_size the body waits in a file nobody can open
        # by name, readable only by the router's user.
        assert wh.wait_for(lambda: body_files(router), 10, 0.05), \
            "no body file open in the router"
        fd, target = next(iter(body_files(router).items()))
        assert target.endswith("(deleted)"), target
        st = os.stat("/proc/%d/fd/%s" % (router, fd))
        assert st.st_mode & 0o777 == 0o600, oct(st.st_mode)
        assert st.st_uid == int(wh.proc_status(router)["Uid"].split()[1])
        c.send(data[2 * MB:])
        r = c.read_response()
        assert r.status == 200, r
        got = json.loads(r.body)
        assert got == {"length": str(len(body)), "te": None, "got": len(body),
                       "sha": hashlib.sha256(body).hexdigest()}
        # Keep-alive goes on; the file is gone with the request.
        assert c.request("GET", "/").body == b"upstream says hi"
    assert wh.wait_for(lambda: not body_files(router), 5, 0.05)


def test_chunked_body_over_max_body_size_is_413(warren, upstream):
    port = hh.setup(warren, [{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                    settings={"http": {"max_body_size": 100000,
                                       "body_buffer_size": 1000}})
    with hh.Conn(port, timeout=10) as c:
        c.send(chunked_head() + chunked(os.urandom(100001)))
        r = c.read_response()
        assert r.status == 413, r
        assert c.closed(5)
    # Exactly the limit passes.
    with hh.Conn(port, timeout=10) as c:
        c.send(chunked_head() + chunked(b"a" * 100000))
        assert json.loads(c.read_response().body)["length"] == "100000"


def test_chunked_body_broken_framing_is_400(warren, upstream):
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    for bad in (b"5\r\nabc\r\n0\r\n\r\n", b"zz\r\nabc\r\n", b"3\nabc\r\n0\r\n\r\n"):
        with hh.Conn(port, timeout=10) as c:
            c.send(chunked_head() + bad)
            r = c.read_response()
            assert r.status == 400, (bad, r)
            assert c.closed(5)


def test_chunked_body_stalling_client_times_out(warren, upstream):
    port = hh.setup(warren, [{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                    settings={"http": {"body_read_timeout": 1,
                                       "body_buffer_size": 100}})
    router = warren.pid("router")
    with hh.Conn(port, timeout=20) as c:
        c.send(chunked_head() + b"1000\r\n" + b"a" * 3000)      # and then nothing
        r = c.read_response()
        assert r.status == 408, r
        assert c.closed(5)
    assert wh.wait_for(lambda: not body_files(router), 5, 0.05)


def test_chunked_body_expect_continue(warren, upstream):
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    with hh.Conn(port, timeout=10) as c:
        c.send(chunked_head(extra=b"Expect: 100-continue\r\n"))
        r = c.read_response()
        assert r.status == 100, r
        c.send(chunked(b"hello"))
        got = json.loads(c.read_response().body)
        assert got["length"] == "5" and got["got"] == 5


def test_body_expect_continue_streams_and_keeps_the_connection(warren, upstream):
    """A Content-Length body announced with Expect: 100-continue: the
    router answers 100 itself (the upstream never sees the Expect), streams
    the body up once the client sends it, and the connection serves the
    next request; a chunked one (read whole first) keeps it open too."""
    port = proxy_to(warren, "http://127.0.0.1:%d" % upstream)
    body = os.urandom(300000)
    with hh.Conn(port, timeout=10) as c:
        c.send(b"POST /info HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Expect: 100-continue\r\n\r\n" % len(body))
        r = c.read_response()
        assert r.status == 100, r
        c.send(body)
        got = json.loads(c.read_response().body)
        assert got["length"] == str(len(body)) and got["got"] == len(body), got
        c.send(chunked_head(extra=b"Expect: 100-continue\r\n"))
        assert c.read_response().status == 100
        c.send(chunked(b"hello"))
        got = json.loads(c.read_response().body)
        assert got["length"] == "5" and got["got"] == 5
        r = c.request("GET", "/info")
        assert r.status == 200, r


def vm_kb(pid, key):
    return int(wh.proc_status(pid)[key].split()[0])


def test_chunked_100mb_upload_keeps_router_memory_flat(warren, upstream):
    """100 MB, chunked: the router holds the body in a file, not in memory
    (its peak RSS grows by a small fraction of the body), and it arrives
    whole."""
    w = warren
    total = 100 * MB
    port = hh.setup(w, [{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                    settings={"http": {"max_body_size": 2 * total}})
    router = w.pid("router")
    before = vm_kb(router, "VmHWM")
    block = pattern(MB)
    h = hashlib.sha256()
    with hh.Conn(port, timeout=120) as c:
        c.send(chunked_head())
        for _ in range(total // MB):
            c.send(b"%x\r\n%s\r\n" % (len(block), block))
            h.update(block)
        c.send(b"0\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    got = json.loads(r.body)
    assert got == {"length": str(total), "te": None, "got": total, "sha": h.hexdigest()}
    peak = vm_kb(router, "VmHWM")
    print("router peak RSS before %d KB, after the 100 MB upload %d KB (+%d KB)"
          % (before, peak, peak - before))
    assert peak - before < 20 * 1024, "router peak RSS grew %d KB" % (peak - before)


def test_response_headers_on_a_proxied_answer(warren, upstream):
    port = hh.setup(warren, [{"action": {
        "proxy": "http://127.0.0.1:%d" % upstream,
        "response_headers": {"X-Copy": "$response_header_x_up $response_header_content_length",
                             "X-Up": "replaced", "X-Method": "$method",
                             "Content-Length": "1"}}}])
    with hh.Conn(port, timeout=10) as c:
        for _ in range(2):                      # keep-alive: each answer gets them
            r = c.request("GET", "/")
            assert r.status == 200 and r.body == b"upstream says hi", r
            assert r.header("X-Copy") == "yes 16", r
            assert r.all("X-Up") == ["replaced"], r
            assert r.header("X-Method") == "GET", r
            assert r.all("Content-Length") == ["16"], r
        r = c.request("GET", "/chunked")            # relayed chunked
        assert r.status == 201 and r.header("X-Copy") == "yes", r      # no length
        assert r.body == b"abc" + b"d" * 70000 + b"e"


def test_proxied_requests_are_logged(warren, upstream):
    w = warren
    path = os.path.join(w.dir, "access.log")
    port = hh.setup(w, [{"action": {"proxy": "http://127.0.0.1:%d" % upstream}}],
                    extra={"access_log": {"path": path, "format":
                           "$request_line $status $body_bytes_sent $response_header_x_up"}})
    with hh.Conn(port, timeout=10) as c:
        assert c.request("GET", "/").status == 200
        assert c.request("GET", "/chunked").status == 201
        c.send(chunked_head("/info/x") + chunked(b"abc"))
        info = c.read_response()
        assert info.status == 200
    want = ["GET / HTTP/1.1 200 16 yes", "GET /chunked HTTP/1.1 201 70004 yes",
            "POST /info/x HTTP/1.1 200 %d " % len(info.body)]

    def got():
        try:
            with open(path) as f:
                ls = f.read().splitlines()
        except FileNotFoundError:
            return None
        return ls if len(ls) >= 3 else None
    assert wh.wait_for(got, 5, 0.05) == want

"""An upstream (the `proxy` action, or a `"protocol": "http"` app) is not
trusted either: a malformed or ambiguous response must never reach the
client as something else. Each case answers a request with raw bytes; the
client gets 502 (or a cut connection when the answer had begun), and the
next request on the same client connection is answered right (no desync)."""

import socket
import threading

import pytest

import http_helpers as hh

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"

# path: (raw response, what the client must get: a status, "cut" for 502 or
# a connection cut, or (status, body) for an answer relayed as it should be)
CASES = {
    "/badstatus":   (b"HTTP/1.1 abc Nope\r\nContent-Length: 0\r\n\r\n", 502),
    "/nostatus":    (b"HTTP/1.1\r\n\r\n", 502),
    "/notsp":       (b"HTTP/1.1 200 OK\r\nX:\x00y\r\nContent-Length: 0\r\n\r\n", 502),
    # RFC 9112 §2.2 lets a recipient take a bare LF as a line end: parsed,
    # and re-framed for the client like any answer
    "/bareLF":      (b"HTTP/1.1 200 OK\nX-B: b\nContent-Length: 2\n\nok", (200, b"ok")),
    "/nocolon":     (b"HTTP/1.1 200 OK\r\nJunk\r\nContent-Length: 2\r\n\r\nok", 502),
    "/fold":        (b"HTTP/1.1 200 OK\r\nX-A: b\r\n c\r\nContent-Length: 2\r\n\r\nok", 502),
    "/spacename":   (b"HTTP/1.1 200 OK\r\nX A: b\r\nContent-Length: 2\r\n\r\nok", 502),
    "/twolengths":  (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 9\r\n\r\nok", 502),
    "/badlength":   (b"HTTP/1.1 200 OK\r\nContent-Length: 2x\r\n\r\nok", 502),
    "/negative":    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nok", 502),
    "/te_and_cl":   (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked"
                     b"\r\n\r\n2\r\nok\r\n0\r\n\r\n", 502),
    "/te_gzip":     (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nok", 502),
    "/badchunk":    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n"
                     b"0\r\n\r\n", "cut"),
    "/short":       (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok", "cut"),
    "/smuggle":     (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                     b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nforged", (200, b"ok")),
    "/interim":     (b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n" + OK, (200, b"ok")),
    "/hugehead":    (b"HTTP/1.1 200 OK\r\n" + b"X-Big: " + b"a" * 200000 + b"\r\n"
                     b"Content-Length: 2\r\n\r\nok", 502),
}


@pytest.fixture
def rude_upstream():
    """Answers each request with CASES[path][0], then closes."""
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(64)

    def one(s):
        with s:
            got = hh.recv_head(s)
            if got is None:
                return
            path = got[0].split(b" ", 2)[1].decode()
            raw = CASES.get(path, (OK,))[0]
            try:
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
                while s.recv(65536):
                    pass
            except OSError:
                pass

    def serve():
        while True:
            try:
                s, _ = lst.accept()
            except OSError:
                return
            threading.Thread(target=one, args=(s,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    yield lst.getsockname()[1]
    lst.close()


@pytest.mark.parametrize("path", sorted(CASES))
def test_a_bad_upstream_answer_never_reaches_the_client(warren, rude_upstream, path):
    w = warren
    port = hh.setup(w, [{"action": {"proxy": "http://127.0.0.1:%d" % rude_upstream}}])
    assert hh.get(port, "/fine").body == b"ok"
    w.baseline_all()
    want = CASES[path][1]
    c = hh.Conn(port, timeout=10)
    with c:
        c.send(hh.build("GET", path))
        try:
            r = c.read_response()
        except hh.HTTPError:
            r = None
        if want == "cut":
            assert r is None or r.status == 502, r
        elif isinstance(want, tuple):
            assert r is not None and (r.status, r.body) == want, r
        else:
            assert r is not None and r.status == want, r
        if r is not None:
            assert b"forged" not in r.body and r.header("X-A") is None, r
        # The connection, if still open, carries the next exchange in step.
        if r is not None and not c.closed():
            c.send(hh.build("GET", "/fine"))
            r2 = c.read_response()
            assert (r2.status, r2.body) == (200, b"ok"), r2

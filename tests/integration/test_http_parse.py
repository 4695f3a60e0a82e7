"""Data plane: the request parser and smuggling defences, seen from a raw
socket. Every malformed request gets its exact status AND the connection is
closed after it (nothing after a broken request may be taken as a request)."""

import pytest

import http_helpers as hh

ROUTES = [{"action": {"return": 200}}]

SETTINGS = {"http": {"large_header_buffer_size": 1024, "large_header_buffers": 2,
                     "max_body_size": 100}}

H = b"Host: localhost\r\n"

CASES = [
    ("bad_request_line", b"GET\r\n\r\n", 400),
    ("bad_request_line_spaces", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bad_method_char", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("bad_version", b"GET / HTTP/1.x\r\n" + H + b"\r\n", 400),
    ("http2", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505),
    ("http3", b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505),
    ("long_request_line", b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("long_field", b"GET / HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 2000 + b"\r\n\r\n", 431),
    ("big_head", b"GET / HTTP/1.1\r\n" + H +
     b"".join(b"X-F%d: %s\r\n" % (i, b"c" * 900) for i in range(4)) + b"\r\n", 431),
    ("cl_and_te", b"POST / HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_and_cl", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("two_cl", b"POST / HTTP/1.1\r\n" + H +
     b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    ("cl_list_differs", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3, 4\r\n\r\nabcd", 400),
    ("bad_cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400),
    ("negative_cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("plus_cl", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc", 400),
    ("huge_cl", b"POST / HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999\r\n\r\n", 400),
    ("bare_cr_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    ("bare_cr_line", b"GET / HTTP/1.1\r" + H + b"\r\n", 400),
    ("obs_fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\r\n  folded\r\n\r\n", 400),
    ("space_before_colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : a\r\n\r\n", 400),
    ("nul_in_value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("te_gzip", b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 501),
    ("te_chunked_not_last", b"POST / HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400),
    ("te_in_http10", b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("missing_host_11", b"GET / HTTP/1.1\r\n\r\n", 400),
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("bad_host", b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    ("body_over_max", b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 1000\r\n\r\n" +
     b"x" * 1000, 413),
]


@pytest.mark.parametrize("data,want", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed(vwarren, data, want):
    port = hh.setup(vwarren, ROUTES, SETTINGS)
    with hh.Conn(port) as c:
        c.send(data)
        r = c.read_response()
        assert r.status == want, r
        assert r.header("Connection") == "close", r
        assert c.closed(5.0), "connection not closed after %d" % want


CHUNK_CASES = [
    ("bad_chunk_size", b"zz\r\nabc\r\n0\r\n\r\n", 400),
    # a size over max_body_size may be refused (413) before it overflows (400)
    ("chunk_size_overflow", b"ffffffffffffffffffff\r\nabc\r\n0\r\n\r\n", (400, 413)),
    ("chunk_bare_lf", b"3\nabc\r\n0\r\n\r\n", 400),
    ("chunk_no_crlf_after_data", b"3\r\nabcX\r\n0\r\n\r\n", 400),
    ("chunked_over_max", b"80\r\n" + b"y" * 128 + b"\r\n0\r\n\r\n", 413),
]


@pytest.mark.parametrize("body,want", [c[1:] for c in CHUNK_CASES],
                         ids=[c[0] for c in CHUNK_CASES])
def test_bad_chunked_body(vwarren, body, want):
    """A broken chunked body is an error of the request (Unit: 400, 413 over
    max_body_size), never a 200 for the route's action; the connection is
    closed and the bytes after it are not a request."""
    port = hh.setup(vwarren, ROUTES, SETTINGS)
    with hh.Conn(port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" + body +
               b"GET /smuggled HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
        assert r.status in (want if isinstance(want, tuple) else (want,)), r
        assert c.closed(5.0), "connection not closed after a broken chunked body"


def test_limits_follow_settings(vwarren):
    """The same long line is fine once large_header_buffer_size allows it."""
    port = hh.setup(vwarren, ROUTES, {"http": {"large_header_buffer_size": 4096}})
    r = hh.get(port, "/" + "a" * 2000, headers={"X-Big": "b" * 2000})
    assert r.status == 200, r


def test_body_at_limit_is_accepted(vwarren):
    port = hh.setup(vwarren, ROUTES, SETTINGS)
    with hh.Conn(port) as c:
        r = c.request("POST", "/", body=b"z" * 100)
        assert r.status == 200, r
        r = c.request("GET", "/")
        assert r.status == 200, r


def test_error_then_nothing_else_answered(vwarren):
    """Bytes pipelined behind a malformed request are never answered."""
    port = hh.setup(vwarren, ROUTES, SETTINGS)
    with hh.Conn(port) as c:
        c.send(b"POST / HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\n"
               b"GET /x HTTP/1.1\r\n" + H + b"\r\n")
        r = c.read_response()
        assert r.status == 400
        assert c.closed(5.0)


BAD_TARGETS = ["/../etc/passwd", "/%2e%2e/etc/passwd", "/a/%2E%2E/%2e%2e/x", "/a%00b",
               "/a%zz", "/a%2"]


@pytest.mark.parametrize("target", BAD_TARGETS)
def test_bad_target(vwarren, target):
    """A well-framed request whose path cannot be normalized: 400. The framing
    is intact, so the connection may stay open; if it does, the next request
    on it must be answered normally."""
    port = hh.setup(vwarren, [{"match": {"uri": "/ok"}, "action": {"return": 204}},
                              {"action": {"return": 200}}])
    with hh.Conn(port) as c:
        r = c.request("GET", target)
        assert r.status == 400, r
        if r.header("Connection") == "close":
            assert c.closed(5.0)
        else:
            assert c.request("GET", "/ok").status == 204

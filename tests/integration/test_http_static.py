"""Data plane: the share action (static files) with Unit's semantics. The
files live in a temp dir that the router (user nobody) can read."""

import email.utils
import os
import re
import shutil

import pytest

import http_helpers as hh

HTML = b"<!doctype html><p>hello</p>\n"
TEXT = bytes(range(32, 127)) * 3          # 285 bytes


@pytest.fixture
def root():
    d = hh.make_root()
    hh.write(d, "pub/index.html", HTML)
    hh.write(d, "pub/a.txt", TEXT)
    hh.write(d, "pub/style.css", b"body{}")
    hh.write(d, "pub/pic.png", b"\x89PNG\r\n\x1a\n")
    hh.write(d, "pub/data.wrn", b"custom")
    hh.write(d, "pub/noext", b"raw")
    hh.write(d, "pub/dir/index.html", b"dir index")
    hh.write(d, "pub/dir/home.htm", b"home")
    hh.write(d, "pub/empty.txt", b"")
    hh.write(d, "pub/secret.txt", b"root only", mode=0o600)
    hh.write(d, "secret.txt", b"outside the root")
    os.symlink(os.path.join(d, "pub/a.txt"), os.path.join(d, "pub/link.txt"))
    os.symlink("../secret.txt", os.path.join(d, "pub/escape.txt"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


def share(w, root, **action):
    a = {"share": os.path.join(root, "pub") + "$uri"}
    a.update(action)
    return hh.setup(w, [{"action": a}])


def test_file_200_headers(vwarren, root):
    port = share(vwarren, root)
    st = os.stat(os.path.join(root, "pub/a.txt"))
    r = hh.get(port, "/a.txt")
    assert r.status == 200, r
    assert r.body == TEXT
    assert r.header("Content-Length") == str(len(TEXT))
    assert r.header("Content-Type").split(";")[0] == "text/plain"
    assert r.header("ETag") and re.fullmatch(r'(W/)?"[^"]+"', r.header("ETag")), r
    lm = email.utils.parsedate_to_datetime(r.header("Last-Modified"))
    assert int(lm.timestamp()) == int(st.st_mtime)
    assert r.header("Last-Modified").endswith(" GMT")


@pytest.mark.parametrize("path,ctype", [
    ("/index.html", "text/html"), ("/style.css", "text/css"), ("/pic.png", "image/png"),
    ("/noext", "application/octet-stream")])
def test_content_types(vwarren, root, path, ctype):
    port = share(vwarren, root)
    r = hh.get(port, path)
    assert r.status == 200, r
    assert r.header("Content-Type").split(";")[0] == ctype


def test_mime_types_override(vwarren, root):
    a = {"share": os.path.join(root, "pub") + "$uri"}
    hh_port = hh.setup(vwarren, [{"action": a}], {"http": {"static": {"mime_types": {
        "text/x-warren": [".wrn"], "text/x-mine": ".css"}}}})
    assert hh.get(hh_port, "/data.wrn").header("Content-Type").split(";")[0] == "text/x-warren"
    assert hh.get(hh_port, "/style.css").header("Content-Type").split(";")[0] == "text/x-mine"
    assert hh.get(hh_port, "/a.txt").header("Content-Type").split(";")[0] == "text/plain"


def test_head_file(vwarren, root):
    port = share(vwarren, root)
    with hh.Conn(port) as c:
        c.send(hh.build("HEAD", "/a.txt") + hh.build("GET", "/style.css"))
        h = c.read_response(head_only=True)
        assert h.status == 200 and h.header("Content-Length") == str(len(TEXT))
        g = c.read_response()
        assert g.status == 200 and g.body == b"body{}", g


def test_empty_file(vwarren, root):
    port = share(vwarren, root)
    with hh.Conn(port) as c:
        r = c.request("GET", "/empty.txt")
        assert r.status == 200 and r.header("Content-Length") == "0" and r.body == b""
        assert c.request("GET", "/a.txt").body == TEXT


def test_conditional_304(vwarren, root):
    port = share(vwarren, root)
    r = hh.get(port, "/a.txt")
    etag, lm = r.header("ETag"), r.header("Last-Modified")
    with hh.Conn(port) as c:
        r = c.request("GET", "/a.txt", {"If-None-Match": etag})
        assert r.status == 304, r
        assert r.body == b""
        r = c.request("GET", "/a.txt", {"If-None-Match": '"nope", ' + etag})
        assert r.status == 304, r
        r = c.request("GET", "/a.txt", {"If-None-Match": '"nope"'})
        assert r.status == 200 and r.body == TEXT
        r = c.request("GET", "/a.txt", {"If-Modified-Since": lm})
        assert r.status == 304, r
        r = c.request("GET", "/a.txt", {"If-Modified-Since": "Thu, 01 Jan 1998 00:00:00 GMT"})
        assert r.status == 200 and r.body == TEXT
        # If-None-Match takes precedence over If-Modified-Since
        r = c.request("GET", "/a.txt", {"If-None-Match": '"nope"', "If-Modified-Since": lm})
        assert r.status == 200, r


def test_range(vwarren, root):
    port = share(vwarren, root)
    n = len(TEXT)
    with hh.Conn(port) as c:
        r = c.request("GET", "/a.txt", {"Range": "bytes=2-5"})
        assert r.status == 206, r
        assert r.body == TEXT[2:6]
        assert r.header("Content-Range") == "bytes 2-5/%d" % n
        assert r.header("Content-Length") == "4"
        r = c.request("GET", "/a.txt", {"Range": "bytes=-10"})
        assert r.status == 206 and r.body == TEXT[-10:], r
        assert r.header("Content-Range") == "bytes %d-%d/%d" % (n - 10, n - 1, n)
        r = c.request("GET", "/a.txt", {"Range": "bytes=280-"})
        assert r.status == 206 and r.body == TEXT[280:], r
        r = c.request("GET", "/a.txt", {"Range": "bytes=100-100000"})
        assert r.status == 206 and r.body == TEXT[100:], r
        r = c.request("GET", "/a.txt", {"Range": "bytes=1000-2000"})
        assert r.status == 416, r
        assert r.header("Content-Range") == "bytes */%d" % n, r
        r = c.request("GET", "/a.txt")           # the connection is still in sync
        assert r.status == 200 and r.body == TEXT


def test_index(vwarren, root):
    port = share(vwarren, root)
    r = hh.get(port, "/")
    assert r.status == 200 and r.body == HTML
    r = hh.get(port, "/dir/")
    assert r.status == 200 and r.body == b"dir index", r
    assert r.header("Content-Type").split(";")[0] == "text/html"
    port = share(vwarren, root, index="home.htm")
    r = hh.get(port, "/dir/")
    assert r.status == 200 and r.body == b"home", r


def test_dir_redirect(vwarren, root):
    port = share(vwarren, root)
    r = hh.get(port, "/dir")
    assert r.status == 301, r
    assert r.header("Location") == "/dir/", r
    r = hh.get(port, "/dir?x=1")
    assert r.status == 301, r
    assert r.header("Location") in ("/dir/?x=1", "/dir/"), r


def test_missing_404(vwarren, root):
    port = share(vwarren, root)
    assert hh.get(port, "/nope.txt").status == 404
    assert hh.get(port, "/nodir/x").status == 404


def test_unreadable_403(vwarren, root):
    port = share(vwarren, root)
    r = hh.get(port, "/secret.txt")
    assert r.status == 403, r
    assert b"root only" not in r.body


def test_symlinks(vwarren, root):
    port = share(vwarren, root)
    r = hh.get(port, "/link.txt")
    assert r.status == 200 and r.body == TEXT
    port = share(vwarren, root, follow_symlinks=False)
    r = hh.get(port, "/link.txt")
    assert r.status == 403, r
    assert hh.get(port, "/a.txt").status == 200


def test_chroot(vwarren, root):
    # share below the chroot: served
    port = share(vwarren, root, chroot=os.path.join(root, "pub"))
    assert hh.get(port, "/a.txt").status == 200
    # a symlink climbing out of the chroot cannot reach the outside file
    r = hh.get(port, "/escape.txt")
    assert r.status in (403, 404), r
    assert b"outside the root" not in r.body
    # a share path outside the chroot: 403
    a = {"share": root + "$uri", "chroot": os.path.join(root, "pub")}
    port = hh.setup(vwarren, [{"action": a}])
    r = hh.get(port, "/secret.txt")
    assert r.status == 403, r
    assert b"outside the root" not in r.body
    r = hh.get(port, "/pub/a.txt")
    assert r.status == 200 and r.body == TEXT


def test_pct_dotdot_cannot_escape(vwarren, root):
    port = share(vwarren, root)
    for t in ("/%2e%2e/secret.txt", "/dir/%2e%2e/%2e%2e/secret.txt", "/..%2fsecret.txt",
              "/%2E%2E%2Fsecret.txt", "/dir/..%2F..%2Fsecret.txt"):
        r = hh.get(port, t)
        assert r.status != 200, (t, r)
        assert b"outside the root" not in r.body, t
    r = hh.get(port, "/dir/%2e%2e/a.txt")
    assert r.status == 200 and r.body == TEXT


def test_types_filter(vwarren, root):
    port = share(vwarren, root, types=["text/plain", "image/*"])
    assert hh.get(port, "/a.txt").status == 200
    assert hh.get(port, "/pic.png").status == 200
    assert hh.get(port, "/style.css").status == 403
    port = share(vwarren, root, types=["!text/css"])
    assert hh.get(port, "/a.txt").status == 200
    assert hh.get(port, "/style.css").status == 403


def test_fallback(vwarren, root):
    port = share(vwarren, root, fallback={"return": 299,
                                          "response_headers": {"X-Fb": "$uri"}})
    r = hh.get(port, "/nope")
    assert r.status == 299 and r.header("X-Fb") == "/nope", r
    assert hh.get(port, "/a.txt").status == 200
    port = share(vwarren, root, types=["text/plain"], fallback={"return": 298})
    assert hh.get(port, "/style.css").status == 298


def test_fallback_to_share(vwarren, root):
    other = hh.make_root()
    try:
        hh.write(other, "only-here.txt", b"other root")
        port = share(vwarren, root, fallback={"share": other + "$uri"})
        r = hh.get(port, "/only-here.txt")
        assert r.status == 200 and r.body == b"other root", r
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_share_array_in_order(vwarren, root):
    other = hh.make_root()
    try:
        hh.write(other, "a.txt", b"second a")
        hh.write(other, "b.txt", b"second b")
        a = {"share": [os.path.join(root, "pub") + "$uri", other + "$uri"]}
        port = hh.setup(vwarren, [{"action": a}])
        assert hh.get(port, "/a.txt").body == TEXT
        r = hh.get(port, "/b.txt")
        assert r.status == 200 and r.body == b"second b", r
        assert hh.get(port, "/c.txt").status == 404
    finally:
        shutil.rmtree(other, ignore_errors=True)


def test_share_with_fixed_path(vwarren, root):
    a = {"share": os.path.join(root, "pub/a.txt")}
    port = hh.setup(vwarren, [{"action": a}])
    assert hh.get(port, "/anything/at/all").body == TEXT


def test_large_file_sendfile(vwarren, root):
    data = os.urandom(5 * 1024 * 1024 + 123)
    hh.write(root, "pub/big.bin", data)
    port = share(vwarren, root)
    with hh.Conn(port, timeout=30) as c:
        r = c.request("GET", "/big.bin")
        assert r.status == 200
        assert len(r.body) == len(data) and r.body == data
        r = c.request("GET", "/big.bin", {"Range": "bytes=4000000-4000099"})
        assert r.status == 206 and r.body == data[4000000:4000100]
        r = c.request("GET", "/a.txt")
        assert r.body == TEXT


def test_large_file_slow_reader(vwarren, root):
    """A reader slower than the socket buffer: the rest still arrives."""
    data = os.urandom(3 * 1024 * 1024)
    hh.write(root, "pub/big2.bin", data)
    port = share(vwarren, root)
    import socket
    import time
    with hh.Conn(port, timeout=30) as c:
        c.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(hh.build("GET", "/big2.bin"))
        time.sleep(0.5)
        r = c.read_response()
        assert r.status == 200 and r.body == data


def test_share_variables_in_path(vwarren, root):
    hh.write(root, "vh/h.example/page.txt", b"vhost page")
    a = {"share": os.path.join(root, "vh") + "/$host$uri"}
    port = hh.setup(vwarren, [{"action": a}])
    r = hh.get(port, "/page.txt", host="h.example")
    assert r.status == 200 and r.body == b"vhost page", r
    assert hh.get(port, "/page.txt", host="other.example").status == 404


def test_response_headers_on_share(vwarren, root):
    port = share(vwarren, root, response_headers={"Cache-Control": "max-age=60",
                                                  "ETag": None})
    r = hh.get(port, "/a.txt")
    assert r.status == 200 and r.body == TEXT
    assert r.header("Cache-Control") == "max-age=60"
    assert r.header("ETag") is None, r

"""settings.http.chunked_transform: a chunked request body to an application
is read whole first (in memory up to body_buffer_size, else in a temporary
file) and reaches the worker with a Content-Length and no Transfer-Encoding,
as Unit does; off (the default), the worker gets the body as it streams, with
no length. The limits of a body read whole (max_body_size, broken framing)
answer before any worker sees the request."""

import hashlib
import os
import shutil

import pytest

import http_helpers as hh
import warren_helpers as wh

ECHO = '''
import hashlib

def application(environ, start_response):
    body = environ["wsgi.input"].read()
    text = "cl=%s te=%s n=%d md5=%s" % (environ.get("CONTENT_LENGTH"),
                                       environ.get("HTTP_TRANSFER_ENCODING"),
                                       len(body), hashlib.md5(body).hexdigest())
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]
'''


@pytest.fixture
def echo(warren_factory):
    rt = wh.runtimes_modulesdir()
    appdir = hh.make_root("warren-ct-")
    hh.write(appdir, "echo.py", ECHO)
    w = warren_factory(extra_args=["--modulesdir", rt])
    yield w, appdir
    shutil.rmtree(rt, ignore_errors=True)
    shutil.rmtree(appdir, ignore_errors=True)


def config(w, appdir, **http):
    return hh.setup(w, [{"action": {"pass": "applications/echo"}}],
                    settings={"http": http} if http else None,
                    extra={"applications": {"echo": {"type": "python", "path": appdir,
                                                     "module": "echo"}}})


def chunked(data, size=1000):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i:i + size]
        out += b"%x\r\n%s\r\n" % (len(piece), piece)
    return out + b"0\r\n\r\n"


def post_chunked(conn, data, path="/"):
    conn.send(hh.build("POST", path, {"Transfer-Encoding": "chunked"}) + chunked(data))
    return conn.read_response()


def expect(r, data, length=True):
    assert r.status == 200, r
    want = "cl=%s te=%s n=%d md5=%s" % (len(data) if length else None,
                                       None if length else "chunked", len(data),
                                       hashlib.md5(data).hexdigest())
    assert r.body.decode() == want


def test_off_by_default_the_body_streams_without_a_length(echo):
    w, appdir = echo
    port = config(w, appdir)
    data = os.urandom(5000)
    with hh.Conn(port) as c:
        expect(post_chunked(c, data), data, length=False)


@pytest.mark.parametrize("size", [0, 11, 8192, 300000], ids=["empty", "small", "at-buffer",
                                                            "file"])
def test_on_the_worker_gets_a_length(echo, size):
    w, appdir = echo
    port = config(w, appdir, chunked_transform=True)
    data = os.urandom(size)
    with hh.Conn(port) as c:
        expect(post_chunked(c, data), data)
        # The connection serves on: a second one, then a plain request.
        expect(post_chunked(c, data[::-1]), data[::-1])
        c.send(hh.build("POST", "/", {"Content-Length": "3"}) + b"abc")
        expect(c.read_response(), b"abc")


def test_a_body_bigger_than_the_window_and_the_buffer(echo):
    """Past the worker's flow-control window (256 KiB) and body_buffer_size:
    sent from the temporary file in windows, in order."""
    w, appdir = echo
    port = config(w, appdir, chunked_transform=True, body_buffer_size=4096)
    data = os.urandom(3 * 1024 * 1024 + 17)
    with hh.Conn(port, timeout=30) as c:
        expect(post_chunked(c, data, path="/big"), data)


def test_limits_answer_before_the_worker(echo):
    w, appdir = echo
    port = config(w, appdir, chunked_transform=True, max_body_size=1000)
    with hh.Conn(port) as c:
        r = post_chunked(c, os.urandom(1001))
        assert r.status == 413, r
    with hh.Conn(port) as c:
        c.send(hh.build("POST", "/", {"Transfer-Encoding": "chunked"}) + b"zz\r\nab\r\n")
        r = c.read_response()
        assert r.status == 400, r
    # The worker never saw them, and serves on.
    with hh.Conn(port) as c:
        expect(post_chunked(c, b"fine"), b"fine")


def test_switching_it_live(echo):
    w, appdir = echo
    port = config(w, appdir, chunked_transform=True)
    with hh.Conn(port) as c:
        expect(post_chunked(c, b"one"), b"one")
    s, j = w.put("/config/settings/http/chunked_transform", False)
    assert (s, j) == (200, wh.SUCCESS), j
    with hh.Conn(port) as c:
        expect(post_chunked(c, b"two"), b"two", length=False)


PHP_ECHO = '''<?php
$b = file_get_contents("php://input");
echo "cl=", $_SERVER["CONTENT_LENGTH"] ?? "None", " n=", strlen($b), " md5=", md5($b);
'''


def test_php_gets_a_length_too(echo):
    w, appdir = echo
    hh.write(appdir, "index.php", PHP_ECHO)
    port = hh.setup(w, [{"action": {"pass": "applications/php"}}],
                    settings={"http": {"chunked_transform": True}},
                    extra={"applications": {"php": {"type": "php", "root": appdir}}})
    data = os.urandom(20000)
    with hh.Conn(port) as c:
        c.send(hh.build("POST", "/index.php", {"Transfer-Encoding": "chunked"})
               + chunked(data))
        r = c.read_response()
    assert r.status == 200, r
    assert r.body.decode() == "cl=%d n=%d md5=%s" % (len(data), len(data),
                                                    hashlib.md5(data).hexdigest())

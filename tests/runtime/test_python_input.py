"""warren-python: wsgi.input streams the request body from the channel,
within the window the router granted, never buffering it whole."""

import hashlib
import json
import random

import pytest

from fake_router import MAX_PAYLOAD, WINDOW_INIT

TWO_MB = 2 * 1024 * 1024


def make_body(size, seed=1):
    """Lines of random lengths (some longer than a channel message), so
    readline crosses chunk boundaries every way."""
    rnd = random.Random(seed)
    out, n = [], 0
    while n < size:
        k = rnd.choice([0, 1, 5, 80, 999, 1000, 1001, 4096, 70000])
        line = bytes(rnd.randrange(32, 127) for _ in range(min(k, 64)))
        line = (line * (k // max(len(line), 1) + 1))[:k] + b"\n"
        out.append(line)
        n += len(line)
    return b"".join(out)[:size]


BODY = make_body(TWO_MB)


def post(worker, mode, body=BODY):
    return worker.request(method="POST", path="/body", query=mode,
                          body=body,
                          headers=[("Content-Length", str(len(body)))])


@pytest.mark.parametrize("mode", ["read", "readall", "readline",
                                  "readline_size", "iter", "readlines",
                                  "readlines_hint"])
def test_body_read_every_way(python_worker, mode):
    w = python_worker()
    r = post(w, mode)
    assert r.status == 200 and r.end == "END", r
    got = json.loads(r.body)
    assert got["len"] == len(BODY)
    assert got["sha256"] == hashlib.sha256(BODY).hexdigest()
    # The body came in window-sized pieces, credit given back as read.
    assert r.body_sent == len(BODY)
    assert r.granted >= len(BODY) - WINDOW_INIT
    assert r.grants >= (len(BODY) - WINDOW_INIT) // WINDOW_INIT
    if mode == "read":
        # read(n) blocks for n bytes like a buffered file, whatever the
        # chunking of the channel.
        assert got["sizes"][-1] == 100000
    if mode == "readline_size":
        assert max(got["sizes"]) <= 1000


def test_body_lines_match(python_worker):
    w = python_worker()
    r = post(w, "readline")
    got = json.loads(r.body)
    lengths = sorted(set(len(x) for x in BODY.splitlines(keepends=True)))
    assert got["sizes"] == lengths[:5] + lengths[-5:]


def test_body_is_streamed_not_buffered(python_worker):
    """The application answers while the body still arrives: the router
    sees response chunks long before it has sent the last body byte."""
    w = python_worker()
    r = w.request(method="POST", path="/progress", body=BODY)
    assert r.status == 200 and r.end == "END", r
    lines = r.body.split()
    assert int(lines[-1]) == len(BODY)
    assert len(r.chunks) >= 8
    assert r.chunk_at[0] < len(BODY) // 2
    # Each report came before the body was much further along than the
    # application had read: at most a window ahead.
    for chunk, sent in zip(r.chunks, r.chunk_at):
        assert sent - int(chunk) <= WINDOW_INIT + MAX_PAYLOAD


def test_partial_read_does_not_read_ahead(python_worker):
    """An application that reads 10 bytes makes the runtime take at most
    one channel message: no credit goes back for bytes nobody read, and
    the rest of the body is refused (ABORT) after the response."""
    w = python_worker()
    r = post(w, "partial")
    assert r.status == 200 and r.end == "END", r
    assert json.loads(r.body)["len"] == 10
    assert r.granted <= MAX_PAYLOAD
    assert r.body_sent <= WINDOW_INIT + r.granted
    # The worker is fine for the next request on the same channel.
    r = post(w, "read", body=b"small body")
    assert json.loads(r.body)["len"] == 10


def test_empty_and_small_bodies(python_worker):
    w = python_worker()
    for body in (b"", b"x", b"line\nline2\n", b"no newline"):
        for mode in ("read", "readall", "readline", "iter", "readlines"):
            r = post(w, mode, body=body)
            got = json.loads(r.body)
            assert got["len"] == len(body), (mode, body)
            assert got["sha256"] == hashlib.sha256(body).hexdigest()


def test_body_in_tiny_chunks(python_worker):
    """Many small REQ_BODY messages: read(n) still gathers n bytes."""
    w = python_worker()
    body = make_body(300000, seed=2)
    r = w.request(method="POST", path="/body", query="read", body=body,
                  chunk=777)
    got = json.loads(r.body)
    assert got["len"] == len(body)
    assert got["sha256"] == hashlib.sha256(body).hexdigest()
    assert 100000 in got["sizes"]

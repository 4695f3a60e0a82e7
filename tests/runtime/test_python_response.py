"""warren-python: start_response, write(), response iterables, close(),
exc_info, errors, wsgi.errors and wsgi.file_wrapper (PEP 3333)."""

import json
import os
import re
import time

from fake_router import WINDOW_INIT


def get(worker, path, query="", **kw):
    return worker.request(path=path, query=query, **kw)


def closed_log(worker):
    return json.loads(get(worker, "/closed").body)


# ------------------------------------------------------------ streaming

def test_write_callable(python_worker):
    w = python_worker()
    r = get(w, "/write")
    assert (r.status, r.end) == (200, "END")
    assert r.header("Content-Type") == "text/plain"
    assert r.body == b"one two three"
    assert r.chunks == [b"one ", b"two ", b"three"]


def test_generator_streamed_chunk_by_chunk(python_worker):
    w = python_worker()
    r = get(w, "/stream")
    assert (r.status, r.end) == (200, "END")
    assert r.headers == [("Content-Type", "text/plain"), ("X-Stream", "yes")]
    assert r.chunks == [b"chunk %d\n" % i for i in range(5)]


def test_response_larger_than_window(python_worker):
    w = python_worker()
    r = get(w, "/big")
    assert (r.status, r.end) == (200, "END")
    assert len(r.body) == 16 * 65536 > WINDOW_INIT
    assert r.body == b"".join(bytes([65 + i]) * 65536 for i in range(16))


def test_reason_phrase_and_empty_body(python_worker):
    w = python_worker()
    r = get(w, "/reason")
    assert (r.status, r.end, r.body) == (299, "END", b"")
    assert r.headers == [("X-Only", "status code")]


# ------------------------------------------------- one datagram each way

def test_list_response_is_one_datagram(python_worker):
    """A list result's last item ends the response in the same message:
    head, body and end cross the channel as one datagram (proto.h flags);
    a generator's end cannot be known early, so RESP_END follows apart."""
    from fake_router import F_BODY, F_END, RESP_END, RESP_HEAD
    w = python_worker()
    w.datagrams.clear()
    r = get(w, "/env")
    assert (r.status, r.end) == (200, "END")
    assert w.datagrams == [(RESP_HEAD, F_BODY | F_END)]
    w.datagrams.clear()
    r = get(w, "/reason")                   # [b""]: head and end, no body
    assert (r.status, r.body, r.end) == (299, b"", "END")
    assert w.datagrams == [(RESP_HEAD, F_END)]
    w.datagrams.clear()
    r = get(w, "/stream")
    assert r.chunks == [b"chunk %d\n" % i for i in range(5)]
    assert w.datagrams[0] == (RESP_HEAD, F_BODY)
    assert w.datagrams[-1] == (RESP_END, 0)


# ---------------------------------------------------------------- close

def test_close_called_on_success_and_errors(python_worker):
    w = python_worker()
    r = get(w, "/closing", "ok")
    assert (r.status, r.body, r.end) == (200, b"ab", "END")
    r = get(w, "/closing", "before_body")
    assert (r.status, r.end) == (500, "END")
    r = get(w, "/closing", "after_body")
    assert (r.status, r.body, r.end) == (200, b"a", "ABORT")
    assert closed_log(w) == ["ok", "before_body", "after_body"]
    err = w.stderr()
    assert "ValueError: failed in iteration at 0" in err
    assert "ValueError: failed in iteration at 1" in err


# ------------------------------------------------------------- exc_info

def test_exc_info_replaces_unsent_head(python_worker):
    w = python_worker()
    r = get(w, "/exc_replace")
    assert (r.status, r.body, r.end) == (503, b"handled", "END")
    assert r.headers == [("Content-Type", "text/plain")]


def test_empty_chunk_does_not_send_the_head(python_worker):
    w = python_worker()
    r = get(w, "/exc_empty_chunk")
    assert (r.status, r.body, r.end) == (502, b"replaced", "END")


def test_exc_info_reraised_after_head(python_worker):
    w = python_worker()
    r = get(w, "/exc_after_head")
    assert (r.status, r.body, r.end) == (200, b"part1 reraised", "END")


def test_exc_info_reraise_uncaught_cuts_response(python_worker):
    w = python_worker()
    r = get(w, "/exc_after_head_uncaught")
    assert (r.status, r.body, r.end) == (200, b"part1 ", "ABORT")
    assert "ZeroDivisionError" in w.stderr()
    assert get(w, "/write").body == b"one two three"


def test_start_response_twice_without_exc_info(python_worker):
    w = python_worker()
    r = get(w, "/start_twice")
    assert r.status == 200
    assert r.body.startswith(b"RuntimeError: start_response() called again")


def test_bad_status_and_headers_raise(python_worker):
    w = python_worker()
    r = get(w, "/bad_heads")
    assert r.status == 200
    got = json.loads(r.body)
    assert got == {
        "short status": "ValueError",
        "status no space": "ValueError",
        "status letters": "ValueError",
        "status CRLF": "ValueError",
        "status bytes": "TypeError",
        "status 099": "ValueError",
        "header CRLF": "ValueError",
        "header LF": "ValueError",
        "header name space": "ValueError",
        "header name colon": "ValueError",
        "header bytes": "TypeError",
        "header not pair": "TypeError",
        "header not latin-1": "UnicodeEncodeError",
        "headers not list": "TypeError",
    }
    assert r.headers == [("Content-Type", "application/json")]


# --------------------------------------------------------------- errors

def assert_500(r):
    assert (r.status, r.end) == (500, "END"), r
    assert r.headers == [("Content-Type", "text/plain")]
    assert r.body == b"Internal Server Error\n"


def test_exception_answers_500_with_traceback_logged(python_worker):
    w = python_worker()
    r = get(w, "/raise")
    assert_500(r)
    err = w.stderr()
    prefix = r"warren-python\[test:%d\]: " % w.proc.pid
    assert re.search(prefix + r"exception in the application "
                     r"\(GET /raise\), answered 500", err), err
    assert re.search(prefix + r"Traceback \(most recent call last\):", err)
    assert re.search(prefix + r".*wsgi_apps\.py.*in raise_", err)
    assert re.search(prefix + r"ValueError: boom in the app", err)


def test_app_mistakes_answer_500(python_worker):
    w = python_worker()
    for path, message in (
            ("/no_start", "did not call start_response()"),
            ("/str_body", "response body items must be bytes, not str"),
            ("/none", "'NoneType' object is not iterable")):
        assert_500(get(w, path))
        assert message in w.stderr(), path
    # The worker goes on serving.
    assert get(w, "/stream").status == 200


def test_wsgi_errors_lines_with_prefix(python_worker):
    w = python_worker()
    r = get(w, "/errors")
    assert r.body == b"logged"
    prefix = "warren-python[test:%d]: " % w.proc.pid
    # The unterminated tail is flushed when the request ends, which may be
    # just after the router has the response: wait for it, bounded.
    deadline = time.monotonic() + 5
    while True:
        lines = w.stderr().splitlines()
        if prefix + "tail without newline" in lines or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert prefix + "line one" in lines
    assert prefix + "half done" in lines
    assert prefix + "from writelines" in lines
    assert prefix + "tail without newline" in lines


def test_stale_callables_raise_after_the_request(python_worker):
    w = python_worker()
    assert get(w, "/stale").body == b"kept"
    got = json.loads(get(w, "/use_stale").body)
    assert got == {"start_response": "RuntimeError", "write": "RuntimeError",
                   "read": "b''"}


# ---------------------------------------------------------- file_wrapper

def make_file(tmp_path, size=300001):
    data = bytes((i * 7 + i // 251) & 0xFF for i in range(size))
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    return str(path), data


def test_file_wrapper_by_descriptor(python_worker, tmp_path):
    path, data = make_file(tmp_path)
    w = python_worker()
    r = get(w, "/file", "fd:" + path)
    assert (r.status, r.end) == (200, "END")
    assert r.body == data
    assert len(r.chunks) >= len(data) // (64 * 1024)
    assert closed_log(w) == ["file"]


def test_file_wrapper_starts_at_the_file_position(python_worker, tmp_path):
    path, data = make_file(tmp_path)
    w = python_worker()
    r = get(w, "/file", "buffered:" + path)
    assert r.body == data[10:]


def test_file_wrapper_without_descriptor(python_worker, tmp_path):
    path, data = make_file(tmp_path)
    w = python_worker()
    r = get(w, "/file", "bytesio:" + path)
    assert (r.status, r.end) == (200, "END")
    assert r.body == data
    # read(block_size) pieces (one may be split at a window's edge).
    assert max(len(c) for c in r.chunks) == 7000
    assert len(r.chunks) >= len(data) // 7000
    assert closed_log(w) == ["bytesio"]
    assert os.path.exists(path)

"""warren-python serving ASGI 3.0 applications (src/runtime/python/asgi*.c,
asgi_driver.py) under the fake router: the HTTP scope, request and response
bodies streamed with the channel's windows, disconnects, errors before and
after the response started, lifespan, protocol detection, targets,
factories, the zygote, and several requests at once on one worker."""

import hashlib
import json
import os

import pytest

from conftest import assert_clean_stderr
from fake_router import (ABORT, F_END, REQ_BODY, REQ_HEAD, RESP_BODY,
                         RESP_END, RESP_HEAD, WINDOW, U32, WINDOW_INIT,
                         MAX_PAYLOAD, Response, decode_resp_head,
                         encode_head)
# The zygote tests play the prototype as test_python_targets_zygote does.
from test_python_targets_zygote import (READY, ZMSG, spawn, start_zygote,  # noqa: F401
                                        subreaper)

EXIT_APP = 70
STREAMS = 64            # WARREN_MAX_THREADS: what an ASGI worker says
MB = 1024 * 1024


@pytest.fixture
def asgi(python_worker, tmp_path):
    """An ASGI worker on asgi_apps (callable `application` unless given);
    WARREN_TEST_MARKER collects its lifespan events."""
    def start(**options):
        options.setdefault("module", "asgi_apps")
        options.setdefault("callable", "application")
        options.setdefault("WARREN_TEST_MARKER", str(tmp_path / "marker"))
        return python_worker(**options)
    return start


def marker(tmp_path):
    path = tmp_path / "marker"
    return path.read_text().split() if path.exists() else []


def body_json(r):
    assert r.status == 200, (r, r.body)
    return json.loads(r.body)


def pattern(n):
    block = bytes(range(251))
    return (block * (n // len(block) + 1))[:n]


def last_line(worker):
    lines = worker.stderr().rstrip("\n").splitlines()
    assert lines, "no stderr"
    return lines[-1].split("]: ", 1)[1]


# ------------------------------------------------------------------ scope

def test_http_scope(asgi):
    w = asgi(prefix="/app")
    assert w.streams == STREAMS
    r = w.request(method="POST", path="/app/scope/é x".encode(),
                  target=b"/app/scope/%C3%A9%20x?a=1&b",
                  query="a=1&b", version="HTTP/1.0", scheme="https",
                  remote_addr="192.0.2.9", remote_port="5000",
                  local_addr="10.0.0.1", local_port="8443",
                  headers=[("X-Mixed-Case", "V1"), ("x-mixed-case", "v2"),
                           ("Content-Type", "text/plain")],
                  body=b"")
    s = body_json(r)
    assert s["type"] == "http"
    assert s["asgi"] == {"version": "3.0", "spec_version": "2.3"}
    assert s["http_version"] == "1.0"
    assert s["method"] == "POST"
    assert s["scheme"] == "https"
    # path: decoded (the router gives it percent-decoded, as UTF-8 bytes)
    # and whole, root_path included; raw_path as sent.
    assert s["path"] == "/app/scope/é x"
    assert s["raw_path"] == {"bytes": "/app/scope/%C3%A9%20x"}
    assert s["root_path"] == "/app"
    assert s["query_string"] == {"bytes": "a=1&b"}
    assert s["headers"] == [[{"bytes": "x-mixed-case"}, {"bytes": "V1"}],
                            [{"bytes": "x-mixed-case"}, {"bytes": "v2"}],
                            [{"bytes": "content-type"}, {"bytes": "text/plain"}]]
    assert s["client"] == ["192.0.2.9", 5000]
    assert s["server"] == ["10.0.0.1", 8443]
    assert s["state"] == {"greeting": "hello"}
    assert s["types"]["headers"] == "list"
    assert s["types"]["client"] == "tuple"


def test_scope_outside_the_prefix_and_http_11(asgi):
    w = asgi(prefix="/app")
    s = body_json(w.request(path="/application/x"))
    assert (s["path"], s["root_path"]) == ("/application/x", "")
    assert s["http_version"] == "1.1"
    assert s["query_string"] == {"bytes": ""}


def test_scope_without_client_port(asgi):
    w = asgi()
    s = body_json(w.request(path="/scope", remote_addr="unix:",
                            remote_port="", local_addr="unix:/run/w.sock",
                            local_port=""))
    assert s["client"] is None
    assert s["server"] == ["unix:/run/w.sock", None]


def test_state_is_a_copy_per_request(asgi):
    w = asgi()
    assert body_json(w.request(path="/state")) == {"greeting": "hello", "mutated": True}
    assert body_json(w.request(path="/state")) == {"greeting": "hello", "mutated": True}


# ------------------------------------------------------------------ bodies

def test_request_without_body(asgi):
    w = asgi()
    s = body_json(w.request(path="/body"))
    assert s["len"] == 0
    assert s["events"] == [[0, False]]


def test_request_body_streams_in(asgi):
    w = asgi()
    data = pattern(3 * MB + 17)
    r = w.request(method="POST", path="/body", body=data)
    s = body_json(r)
    assert s["len"] == len(data)
    assert s["sha256"] == hashlib.sha256(data).hexdigest()
    # Many events, none over a window, all but the last with more_body.
    assert len(s["events"]) > 1
    assert all(n <= WINDOW_INIT for n, _ in s["events"])
    assert [more for _, more in s["events"]][:-1] == [True] * (len(s["events"]) - 1)
    assert s["events"][-1][1] is False
    # The worker took the body as the app received it, not ahead.
    assert r.granted <= len(data)


def test_large_body_echoed_as_it_comes(asgi):
    w = asgi()
    data = pattern(5 * MB + 3)
    r = w.request(method="POST", path="/echo", body=data)
    assert (r.status, r.end) == (200, "END")
    assert r.body == data
    # Streaming both ways: answer bytes came back while the request body
    # was still being sent.
    assert r.chunk_at[0] < len(data)
    assert all(len(c) <= MAX_PAYLOAD for c in r.chunks)


def test_large_response_in_one_send(asgi):
    w = asgi()
    n = 6 * MB + 5
    r = w.request(path="/big", query=str(n))
    assert (r.status, r.end) == (200, "END")
    assert r.body == pattern(n)
    assert len(r.chunks) >= n // MAX_PAYLOAD


def test_streaming_response(asgi):
    w = asgi()
    r = w.request(path="/stream", query="5")
    assert r.status == 200
    assert r.body == b"".join(b"chunk %d\n" % i for i in range(5)) + b"end\n"
    assert r.header("content-type") == "text/plain"


def test_unread_body_is_stopped(asgi):
    w = asgi()
    r = w.request(method="POST", path="/early", body=pattern(2 * MB))
    assert (r.status, r.body) == (200, b"early")
    assert w.request(path="/stream", query="1").status == 200


# --------------------------------------------------------------- errors

def test_exception_before_start_is_a_500(asgi):
    w = asgi()
    r = w.request(path="/raise-before")
    assert (r.status, r.end) == (500, "END")
    assert r.body == b"Internal Server Error\n"
    err = w.stderr()
    assert "exception in the application (GET /raise-before), answered 500" in err
    assert "Traceback (most recent call last)" in err
    assert "ZeroDivisionError: before start" in err
    assert w.request(path="/stream", query="1").status == 200


def test_exception_after_start_before_body_is_still_a_500(asgi):
    w = asgi()
    r = w.request(path="/started-only")
    assert r.status == 500
    assert "RuntimeError: start, then nothing" in w.stderr()


def test_exception_after_body_cuts_the_response(asgi):
    w = asgi()
    r = w.request(path="/raise-after")
    assert (r.status, r.body, r.end) == (200, b"partial", "ABORT")
    err = w.stderr()
    assert "exception in the application (GET /raise-after), response cut" in err
    assert "RuntimeError: after start" in err
    assert w.request(path="/stream", query="1").status == 200


@pytest.mark.parametrize("path, status, end, logged", [
    ("/no-response", 500, "END", "returned without a response (GET /no-response), answered 500"),
    ("/half-response", 200, "ABORT", "returned before its response ended (GET /half-response), response cut"),
    ("/body-first", 500, "END", "http.response.body before http.response.start"),
    ("/start-twice", 500, "END", "http.response.start sent twice"),
    ("/bad-header", 500, "END", "bad response header b'x-bad'"),
    ("/str-body", 500, "END", "the response body must be bytes, not str"),
    ("/unknown-message", 500, "END", "unexpected ASGI message 'http.response.push'"),
])
def test_wrong_use_of_send(asgi, path, status, end, logged):
    w = asgi()
    r = w.request(path=path)
    assert (r.status, r.end) == (status, end)
    assert logged in w.stderr()


def test_send_after_the_end_is_an_error_logged(asgi):
    w = asgi()
    r = w.request(path="/after-end")
    assert (r.status, r.body, r.end) == (200, b"done", "END")
    assert w.request(path="/after-response").body == b"fine"
    # Logged in the same loop step as the end it follows: before the
    # worker takes the next request.
    assert w.request(path="/stream", query="1").status == 200
    err = w.stderr()
    assert "exception in the application after its response (GET /after-end)" in err
    assert "http.response.body after the response ended" in err
    assert "KeyError: 'after the response'" in err


def test_disconnect(asgi):
    """The router aborts the stream (its client left): receive() gives
    http.disconnect, send() raises an OSError, nothing is logged."""
    w = asgi()
    stream = w.next_stream
    w.next_stream += 1
    w.send(REQ_HEAD, stream, encode_head(method="POST", path="/wait-disconnect"))
    w.send(REQ_BODY, stream, b"some")
    assert w.recv()[:2] == (RESP_HEAD, stream)  # the app took the body
    w.send(ABORT, stream)
    while True:                                 # closed with ABORT in reply
        mtype, s, _ = w.recv()
        assert s == stream
        if mtype == ABORT:
            break
        assert mtype == RESP_BODY
    events = body_json(w.request(path="/events"))
    assert events == ["http.request", "http.disconnect",
                      "ClientDisconnected:OSError"]
    assert "Traceback" not in w.stderr()


def test_disconnect_after_the_response(asgi):
    """receive() once the response is complete: http.disconnect at once."""
    w = asgi()
    assert w.request(path="/disconnect-after-response").body == b"answered"
    assert body_json(w.request(path="/list")) == ["after-response:http.disconnect"]


def test_upgrade_fields_without_the_routers_flag_are_plain_http(asgi):
    """Only the router makes a request an upgrade (WR_APP_F_UPGRADE, with
    the tunnel behind it): one that merely carries the fields is served as
    HTTP (WebSocket itself: tests/integration/test_python_websocket.py)."""
    w = asgi()
    r = w.request(path="/scope", headers=[("Connection", "Upgrade"),
                                          ("Upgrade", "websocket")])
    assert r.status == 200
    assert body_json(r)["type"] == "http"
    assert w.request(path="/stream", query="1").status == 200


# ------------------------------------------------- several at once

def request_all(w, paths):
    """Sends every request (no bodies) before reading any answer; returns
    the responses in the order of paths."""
    streams = {}
    for target in paths:
        path, _, query = target.partition("?")
        stream = w.next_stream
        w.next_stream += 1
        w.send(REQ_HEAD, stream, encode_head(path=path, query=query),
               flags=F_END)
        streams[stream] = Response()
    ended = set()
    while len(ended) < len(streams):
        msg = w.recv()
        assert msg is not None, "worker closed the channel"
        mtype, stream, payload = msg
        r = streams[stream]
        if mtype == RESP_HEAD:
            r.status, r.headers = decode_resp_head(payload)
        elif mtype == RESP_BODY:
            r.chunks.append(payload)
            w.send(WINDOW, stream, U32.pack(len(payload)))
        elif mtype in (RESP_END, ABORT):
            r.end = "END" if mtype == RESP_END else "ABORT"
            ended.add(stream)
    return [streams[s] for s in sorted(streams)]


def test_requests_served_at_once_on_one_worker(asgi):
    w = asgi()
    # /wait answers only after /open ran: one at a time would hang.
    waited, opened = request_all(w, ["/rendezvous/wait", "/rendezvous/open"])
    assert (waited.status, waited.body) == (200, b"waited")
    assert (opened.status, opened.body) == (200, b"opened")


def test_as_many_requests_as_streams(asgi):
    w = asgi()
    rs = request_all(w, ["/stream?3"] * STREAMS)
    assert all(r.status == 200 and r.end == "END" for r in rs)
    assert all(r.body.endswith(b"end\n") for r in rs)
    rs = request_all(w, ["/big?%d" % MB] * 2 + ["/scope"] * (STREAMS - 2))
    assert [len(r.body) for r in rs[:2]] == [MB, MB]
    assert all(r.status == 200 and r.end == "END" for r in rs)


# -------------------------------------------------------------- lifespan

def test_lifespan_startup_and_shutdown(asgi, tmp_path):
    w = asgi()
    assert marker(tmp_path) == ["startup"]      # before HELLO
    assert w.request(path="/stream", query="1").status == 200
    assert w.close() == 0
    assert marker(tmp_path) == ["startup", "shutdown"]


def test_lifespan_startup_failure_fails_the_start(python_start, tmp_path):
    w = python_start(module="asgi_apps", callable="startup_fails")
    assert w.expect_exit() == EXIT_APP
    assert last_line(w) == "lifespan startup failed: database unreachable"


def test_lifespan_failed_then_raised(python_start):
    w = python_start(module="asgi_apps", callable="startup_fails_then_raises")
    assert w.expect_exit() == EXIT_APP
    err = w.stderr()
    assert "RuntimeError: config missing" in err            # the traceback
    assert last_line(w) == "lifespan startup failed: config missing"


def test_lifespan_unsupported(asgi):
    w = asgi(callable="no_lifespan")
    assert "ASGI lifespan not supported by the application (ValueError: only " \
           "http here, not lifespan); going on without it" in w.stderr()
    assert body_json(w.request(path="/")) == {"state": {}}
    assert "Traceback" not in w.stderr()


def test_lifespan_shutdown_failure_is_logged(asgi, tmp_path):
    w = asgi(callable="shutdown_fails")
    assert w.request(path="/").status == 200
    assert w.close() == 0
    assert marker(tmp_path) == ["shutdown"]
    assert "lifespan shutdown failed: flush failed" in w.stderr()


# ------------------------------------------------------------- detection

@pytest.mark.parametrize("callable_, body", [
    ("three_args", b"hello from /x"),
    ("instance", b"hello from /x"),
    ("Legacy", b"legacy /x"),
])
def test_asgi_detected(asgi, callable_, body):
    w = asgi(callable=callable_)
    assert w.streams == STREAMS
    assert w.request(path="/x").body == body


def test_wsgi_detected(python_worker):
    w = python_worker(module="wsgi_apps")
    assert w.streams == 1
    assert w.request(path="/write").body == b"one two three"


def test_protocol_asgi_forces_it(asgi):
    w = asgi(callable="instance", protocol="asgi")
    assert w.request(path="/y").body == b"hello from /y"


def test_protocol_wsgi_forces_it(python_worker):
    """An async callable run as WSGI: its coroutine is no iterable."""
    w = python_worker(module="asgi_apps", callable="application",
                      protocol="wsgi")
    assert w.streams == 1
    assert w.request(path="/").status == 500


def test_bad_protocol_value(python_start):
    w = python_start(module="asgi_apps", protocol="cgi")
    assert w.expect_exit() == EXIT_APP
    assert 'WARREN_PYTHON_PROTOCOL must be "asgi" or "wsgi", not "cgi"' in w.stderr()


# ------------------------------------------------------ targets, factory

TARGETS = json.dumps({
    "front": {"module": "asgi_apps", "callable": "application", "prefix": "/f"},
    "other": {"module": "asgi_apps", "callable": "instance"},
})


def test_targets(asgi, tmp_path):
    w = asgi(module="", callable="", targets=TARGETS)
    s = body_json(w.request(path="/f/scope", target_name="front"))
    assert (s["root_path"], s["state"]) == ("/f", {"greeting": "hello"})
    assert w.request(path="/o", target_name="other").body == b"hello from /o"
    r = w.request(path="/", target_name="nope")
    assert r.status == 500
    assert 'no such target in this application: GET / (target "nope")' in w.stderr()
    assert w.close() == 0
    assert marker(tmp_path) == ["startup", "shutdown"]


def test_targets_mixing_protocols_fail_the_start(python_start):
    mixed = json.dumps({"a": {"module": "asgi_apps", "callable": "application"},
                        "w": {"module": "wsgi_apps"}})
    w = python_start(module="", targets=mixed)
    assert w.expect_exit() == EXIT_APP
    assert last_line(w) == ('the targets mix ASGI ("a") and WSGI ("w") '
                            'applications; one application serves one protocol')


def test_factory(asgi, tmp_path):
    w = asgi(callable="make_app", factory="1")
    assert body_json(w.request(path="/state")) == {"greeting": "hello", "mutated": True}
    assert marker(tmp_path) == ["startup"]


def test_path(asgi, tmp_path):
    """path puts the app's directory first on sys.path, as for WSGI."""
    appdir = tmp_path / "elsewhere"
    appdir.mkdir()
    (appdir / "moved_asgi.py").write_text(
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 201})\n"
        "    await send({'type': 'http.response.body', 'body': b'moved'})\n")
    w = asgi(module="moved_asgi", callable="app", path=str(appdir))
    r = w.request(path="/")
    assert (r.status, r.body) == (201, b"moved")


# ---------------------------------------------------------------- zygote

def test_zygote_workers_run_their_own_loop_and_lifespan(tmp_path, subreaper):
    """Imported once, in the zygote; each forked worker runs lifespan
    startup (before its HELLO) in a loop of its own."""
    zs, proc = start_zygote(tmp_path, module="asgi_import_marker")
    kind, _, pid, _ = ZMSG.unpack(zs.recv(ZMSG.size))
    assert (kind, pid) == (READY, proc.pid)
    workers = [spawn(zs, n, tmp_path) for n in (1, 2)]
    pids = []
    for n, w in enumerate(workers, 1):
        w.expect_hello()
        assert w.streams == STREAMS
        r = w.request(path="/")
        assert r.body == b"forked"
        assert int(r.header("x-pid")) == w.proc.pid
        assert r.header("x-worker") == str(n)
        pids.append(w.proc.pid)
    lines = (tmp_path / "imports.txt").read_text().splitlines()
    assert lines == ["import %d" % proc.pid] + ["startup %d" % p for p in pids]
    for n, w in enumerate(workers, 1):
        w.sock.close()
        _, status = os.waitpid(w.proc.pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        assert_clean_stderr((tmp_path / ("worker-%d.txt" % n)).read_text())
    zs.close()
    assert proc.wait(10) == 0
    assert_clean_stderr((tmp_path / "zygote-stderr.txt").read_text())


def test_zygote_refuses_mixed_targets_before_ready(tmp_path):
    mixed = json.dumps({"a": {"module": "asgi_apps", "callable": "application"},
                        "w": {"module": "wsgi_apps"}})
    zs, proc = start_zygote(tmp_path, module="", targets=mixed)
    assert zs.recv(ZMSG.size) == b""
    assert proc.wait(10) == EXIT_APP
    last = (tmp_path / "zygote-stderr.txt").read_text().strip().splitlines()[-1]
    assert "the targets mix ASGI" in last


# ------------------------------------------- a real framework, if there

def test_starlette(asgi):
    """Debian's python3-starlette, when installed (not needed otherwise).
    Its 0.26 routes on path alone (root_path not removed): no prefix here."""
    pytest.importorskip("starlette")
    w = asgi(module="starlette_app", callable="app")
    s = body_json(w.request(path="/", query="a=1"))
    assert s == {"path": "/", "root_path": "", "ready": "yes", "query": {"a": "1"}}
    r = w.request(method="POST", path="/upload", body=pattern(MB + 1))
    assert (r.status, r.body) == (200, b"1048577 bytes")
    r = w.request(path="/numbers")
    assert (r.status, r.body, r.end) == (200, b"0\n1\n2\n3\n4\n", "END")
    assert w.request(path="/nope").status == 404
    # Starlette answers 500 itself, then raises: logged before the next.
    assert w.request(path="/fail").status == 500
    assert w.request(path="/nope").status == 404
    assert "RuntimeError: starlette route failed" in w.stderr()

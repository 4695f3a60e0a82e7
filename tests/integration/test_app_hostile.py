"""A worker is not trusted: tests/apps/hostile.c breaks the channel protocol
(src/lib/proto.h) in every way it can, as a compromised application could.
The router must answer the client 502 (or cut an answer already begun),
never relay what it was not sent properly, log the breach, end that worker
(main replaces it) and serve on, with nothing leaked."""

import os
import shutil
import socket
import time

import pytest

import http_helpers as hh
import warren_helpers as wh

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOSTILE = os.path.join(REPO, "build", "apps", "hostile")
WINDOW = 256 * 1024          # WR_APP_WINDOW_INIT


@pytest.fixture
def hostile(warren):
    d = hh.make_root("warren-hostile-")
    exe = os.path.join(d, "hostile")
    shutil.copy(HOSTILE, exe)
    os.chmod(exe, 0o755)
    port = hh.setup(warren, [{"action": {"pass": "applications/h"}}], extra={
        "applications": {"h": {"type": "external", "executable": exe, "processes": 1}}})
    assert hh.get(port, "/ok").body == b"ok"
    warren.baseline_all()
    yield port
    shutil.rmtree(d, ignore_errors=True)


def worker_pids(w):
    protos = [p for p, t in w.children().items() if t == "warren: h prototype"]
    return sorted(p for p, st in wh.descendants(w.main_pid).items()
                  if st[1] in protos and st[0] not in ("Z", "X"))


def answer(port, path):
    """The response, or None when the connection ended without a whole one."""
    try:
        with hh.Conn(port, timeout=10) as c:
            return c.request("GET", path)
    except (hh.HTTPError, ConnectionError, socket.timeout):
        return None


def served_again(port):
    def ok():
        r = answer(port, "/ok")
        return r is not None and r.status == 200 and r.body == b"ok"
    return wh.wait_for(ok, 15)


# path: (what the client gets: a status, or "cut" for 502-or-cut, or a body;
#        the reason logged)
CASES = {
    "/runt":        (502, "a message shorter than its header"),
    "/badlen":      (502, "a header whose length is not the message's"),
    "/huge":        (502, "a header whose length is not the message's"),
    "/badtype":     (502, "a type a worker does not send"),
    "/hello":       (502, "a type a worker does not send"),
    "/badflags":    (502, "flags this type may not carry"),
    "/bodyflag":    (502, "flags this type may not carry"),
    "/crlf":        (502, "a malformed response head"),
    "/badname":     (502, "a malformed response head"),
    "/status0":     (502, "a malformed response head"),
    "/count":       (502, "a malformed response head"),
    "/strlen":      (502, "a malformed response head"),
    "/bodyfirst":   (502, "response body before its head"),
    "/window0":     (502, "a WINDOW of 0"),
    "/abortbytes":  (502, "an ABORT with a payload"),
    "/otherstream": (502, "a message for a stream that is not open"),
    "/twoheads":    ("cut", "a second response head"),
    "/overlength":  ("cut", "more response body than its Content-Length"),
    "/afterend":    (b"ok", "a message after its last stream ended"),
}


@pytest.mark.parametrize("path", sorted(CASES))
def test_a_protocol_breach_ends_the_worker_and_nothing_else(warren, hostile, path):
    w, port = warren, hostile
    want, why = CASES[path]
    (pid,) = worker_pids(w)
    r = answer(port, path)
    if want == "cut":
        assert r is None or r.status == 502, r
    elif isinstance(want, bytes):
        assert r is not None and r.status == 200 and r.body == want, r
    else:
        assert r is not None and r.status == want, r
    if r is not None:
        assert r.header("Set-Cookie") is None and b"stolen" not in r.body, r
    if path == "/afterend":
        # Its extra message waits in the channel of a worker gone idle (out
        # of every epoll): the router finds it when it takes the worker for
        # the next request, and ends the worker instead; that request waits
        # for the replacement.
        r = answer(port, "/ok")
        assert r is not None and (r.status, r.body) == (200, b"ok"), r
    assert wh.wait_for(lambda: "broke the channel protocol: " + why in w.log(), 10), \
        w.log()[-2000:]
    assert wh.wait_for(lambda: worker_pids(w) and pid not in worker_pids(w), 15)
    assert served_again(port)


def test_a_worker_ignoring_the_window_cannot_make_the_router_buffer(warren, hostile):
    """/flood sends body without waiting for WINDOW while the client reads
    nothing: past the window the router ends the worker instead of holding
    what the client does not take."""
    w, port = warren, hostile
    (pid,) = worker_pids(w)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        s.sendall(b"GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")
        assert wh.wait_for(lambda: "response body beyond the window granted" in w.log(),
                           15), w.log()[-2000:]
        assert wh.wait_for(lambda: worker_pids(w) and pid not in worker_pids(w), 15)
        router = w.pid("router")
        rss_kb = int([ln.split()[1] for ln in open("/proc/%d/status" % router)
                      if ln.startswith("VmRSS:")][0])
        print("router RSS after the flood: %d kB" % rss_kb)
        # What the client was sent is cut short: the connection ends.
        s.settimeout(10)
        got, end = 0, time.monotonic() + 10
        while time.monotonic() < end:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += len(chunk)
        assert got < 4 * WINDOW + 65536, got
    finally:
        s.close()
    assert served_again(port)



def post_in_pieces(port, path, size, piece=4096):
    """POSTs size bytes in small separate writes (each reaches the worker as
    a message of its own, so the channel fills before the window is used
    up) and returns the response, or None when none came whole."""
    try:
        with hh.Conn(port, timeout=10) as c:
            c.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            c.send("POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n"
                   % (path, size))
            for _ in range(size // piece):
                c.send(b"b" * piece)
                time.sleep(0.002)
            return c.read_response()
    except (hh.HTTPError, ConnectionError, socket.timeout):
        return None


def test_a_channel_full_when_its_stream_ended_is_watched_again(warren, hostile):
    """/lag answers while the router still waits for room in the channel
    (the client's body filled it), after taking just enough for the
    router's ABORT to fit: the stream ends, the worker goes idle with
    nothing to send. /drain then fills the channel again and waits for
    the rest of its body: the router must be watching for room again,
    not think it still is (a next request stalled 5-30 s so)."""
    port = hostile
    size = 240 * 1024                    # within one window (WINDOW)
    r = post_in_pieces(port, "/lag", size)
    assert r is not None and (r.status, r.body) == (200, b"ok"), r
    r = post_in_pieces(port, "/drain", size)
    assert r is not None and (r.status, r.body) == (200, b"ok"), r
    assert served_again(port)


def all_bytes(port, request):
    """Every byte the client gets for request, until the connection ends."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return hh.read_to_end(s)


def test_an_answer_given_up_midway_reaches_the_client_cut(warren, hostile):
    """/cut: head, "part", ABORT, read by the router in one go. What the app
    sent still goes out, and the client can tell the answer is cut (no last
    chunk, then the connection ends); the worker serves on."""
    w, port = warren, hostile
    (pid,) = worker_pids(w)
    for _ in range(5):
        data = all_bytes(port, b"GET /cut HTTP/1.1\r\nHost: x\r\n\r\n")
        assert data.startswith(b"HTTP/1.1 200 "), data
        assert b"\r\n\r\n4\r\npart\r\n" in data and not data.endswith(b"0\r\n\r\n"), data
    r = answer(port, "/ok")
    assert r is not None and (r.status, r.body) == (200, b"ok"), r
    assert worker_pids(w) == [pid]


# A worker that says a hello main must refuse (src/daemon/apps.c), then
# waits: the change that starts it fails with the reason, before the router
# ever sees the channel.
BAD_HELLO_APP = r'''
import os, socket, struct, sys, time
version, streams, tunnels = (int(a) for a in sys.argv[1:4])
s = socket.socket(fileno=int(os.environ["WARREN_CHANNEL_FD"]))
s.send(struct.pack("=HHII", 1, 0, 0, 16) + struct.pack("=IIII", version, os.getpid(),
                                                        streams, tunnels))
time.sleep(60)
'''


@pytest.mark.parametrize("hello,why", [
    ((3, 1, 0), "speaks protocol version 3, not 4"),
    ((4, 0, 0), "offers 0 concurrent requests, not 1 to 64"),
    ((4, 65, 0), "offers 65 concurrent requests, not 1 to 64"),
    ((4, 1, 64), "offers 1 concurrent requests and 64 tunnels, more than 64 streams"),
    ((4, 60, 5), "offers 60 concurrent requests and 5 tunnels, more than 64 streams"),
])
def test_a_hello_out_of_bounds_fails_the_change(warren, hello, why):
    d = hh.make_root("warren-hello-")
    try:
        hh.write(d, "hello.py", BAD_HELLO_APP.encode(), 0o755)
        before = warren.get("/config")[1]
        s, j = warren.put("/config", {
            "listeners": {"127.0.0.1:%d" % wh.free_port(): {"pass": "applications/b"}},
            "applications": {"b": {"type": "external", "executable": "/usr/bin/python3",
                                   "arguments": [os.path.join(d, "hello.py")] +
                                                [str(v) for v in hello],
                                   "processes": 1}}})
        assert s == 500, (s, j)
        assert why in j["detail"], j
        assert warren.get("/config")[1] == before
    finally:
        shutil.rmtree(d, ignore_errors=True)

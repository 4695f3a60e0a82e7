"""A slow client of an application holds back the worker, not the router's
memory (docs/applications.md: responses stream back within a window of
256 KiB per request). tests/apps/bigbody writes a 64 MiB response in 1 MiB
warren_write() calls as fast as libwarren lets it, and records how far it
got in a file; its client sends the GET and reads nothing for a while."""

import os
import shutil
import socket
import time

import http_helpers as hh
import warren_helpers as wh

MB = 1024 * 1024
SIZE = 64 * MB           # the response body
BOUND = 16 * MB          # what may pile up while the client reads nothing
WAIT = 20.0              # seconds anything may take before the test gives up
PATTERN_MOD = 251        # bigbody's /big: byte i is i % 251


def pattern(n):
    return (bytes(range(PATTERN_MOD)) * (n // PATTERN_MOD + 1))[:n]


def rss_kb(pid):
    return int(wh.proc_status(pid)["VmRSS"].split()[0])


def progress(path):
    """bigbody's record: (bytes written, size, "writing" or "done")."""
    try:
        with open(path) as f:
            written, size, state = f.read().split()
    except (FileNotFoundError, ValueError):
        return None
    return int(written), int(size), state


def read_response(s):
    """(status, body, bytes left over) of one response framed by its
    Content-Length, read from socket s into one preallocated buffer."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        assert d, "connection ended before a response head: %r" % bytes(buf[:300])
        buf += d
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    fields = {k.strip().lower(): v.strip()
              for k, _, v in (ln.partition(":") for ln in lines[1:])}
    n = int(fields["content-length"])
    body = bytearray(max(n, len(rest)))
    body[:len(rest)] = rest
    view, got = memoryview(body), len(rest)
    while got < n:
        k = s.recv_into(view[got:n])
        assert k, "body cut at %d of %d bytes" % (got, n)
        got += k
    return int(lines[0].split()[1]), bytes(body[:n]), bytes(body[n:])


def test_slow_client_holds_back_the_worker_not_the_router(warren):
    """While the client reads nothing, the worker is blocked in warren_write
    (far from done) and the router's RSS grows by far less than the body:
    had the router taken the whole response, in memory the RSS would grow by
    64 MiB, on disk the worker would be done. Then the client reads it
    all, intact, and the same connection and worker serve the next
    request."""
    w = warren
    d = hh.make_root("warren-bigbody-")
    try:
        os.chown(d, wh.NOBODY_UID, wh.NOGROUP_GID)    # the worker writes there
        prog = os.path.join(d, "progress")
        app = {"type": "external", "executable": wh.app_binary(d, "bigbody"),
               "processes": 1, "environment": {"PROGRESS": prog}}
        port = hh.setup(w, [{"action": {"pass": "applications/big"}}],
                        extra={"applications": {"big": app}})
        r = hh.get(port, "/pid")
        assert r.status == 200, r
        worker = int(r.body.split()[1])
        # Warm up the router's buffers for an app response, then measure.
        with hh.Conn(port, timeout=WAIT) as c:
            r = c.request("GET", "/big?size=%d" % (2 * MB))
        assert r.status == 200 and r.body == pattern(2 * MB)
        router = w.pid("router")
        before = rss_kb(router)

        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        s.settimeout(WAIT)
        s.connect(("127.0.0.1", port))
        try:
            s.sendall(hh.build("GET", "/big?size=%d" % SIZE))
            # Until the worker is done or makes no progress for a second.
            peak, last = [before], [None, 0.0]

            def settled():
                peak[0] = max(peak[0], rss_kb(router))
                p = progress(prog)
                if p is None or p[1] != SIZE:
                    return None
                if p[2] == "done":
                    return p
                if p != last[0]:
                    last[:] = [p, time.monotonic()]
                    return None
                return p if time.monotonic() - last[1] >= 1.0 else None
            p = wh.wait_for(settled, WAIT, 0.05)
            assert p, "the worker never began: %r" % (progress(prog),)
            peak[0] = max(peak[0], rss_kb(router))
            print("router RSS before %d KB, while blocked %d KB; worker wrote %d KB"
                  % (before, peak[0], p[0] // 1024))
            assert p[2] == "writing" and p[0] < BOUND, \
                "the worker wrote %d of %d bytes to a client reading nothing" % p[:2]
            assert (peak[0] - before) * 1024 < BOUND, \
                "router RSS grew %d KB" % (peak[0] - before)

            status, body, rest = read_response(s)
            assert status == 200
            assert len(body) == SIZE and body == pattern(SIZE)
            assert wh.wait_for(lambda: progress(prog) == (SIZE, SIZE, "done"), WAIT)
            c = hh.Conn.__new__(hh.Conn)        # the same connection
            c.s, c.buf, c.eof = s, rest, False
            r = c.request("GET", "/pid")
            assert (r.status, r.body, c.buf) == (200, b"pid %d\n" % worker, b"")
        finally:
            s.close()
    finally:
        shutil.rmtree(d, ignore_errors=True)

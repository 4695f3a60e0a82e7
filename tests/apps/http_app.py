"""A socket-activated HTTP application for Warren's "protocol": "http"
tests: plain http.server on the listen socket systemd-style activation hands
over (fd 3, LISTEN_FDS, LISTEN_PID). Run with /usr/bin/python3, stdlib only.

  GET  /             "hello <pid>"
  GET  /env          the LISTEN_* and WARREN_* variables, as JSON
  GET  /headers      the request's fields, as JSON (POST: the same)
  GET  /big?n=N      N bytes of a known pattern, with Content-Length
  GET  /chunked?n=N  the same bytes, chunked, in pieces of various sizes
  GET  /close?n=N    the same bytes, ended by closing the connection
  POST /echo         the body back (read whole first), with Content-Length
  POST /sha          "<length> <sha256>" of the body
  GET  /die          the process exits in the middle of the request
  GET  /sleep?n=S     answers after S seconds
  GET  /meet?n=K&t=S  waits (up to S seconds, 10 by default) until K such
                     requests are being served at once: "together", or
                     "alone" when they never were
  GET  with "Connection: upgrade" and "Upgrade: echo": 101, then every
       byte comes back until a line "bye" (answered "bye"), then it closes
       (any other Upgrade: 426)
  HEAD /             the head of GET /
  GET  /conn         "conn C request R": which connection this is (numbered
                     from 1 in the order they came) and how many requests it
                     carried, this one included
  GET  /drop-next    answered as usual; the next request on the same
                     connection is read and left unanswered, the connection
                     closed (a server whose idle timeout ran out as it came)
  GET  /v10          "hello", in an HTTP/1.0 response that does not say
                     keep-alive (the server leaves the connection open)
argv[1] == "fail": print a reason to stderr and exit at once.
argv[1] == "threads": serve every connection in a thread of its own
(ThreadingHTTPServer); otherwise one connection at a time.
"""

import hashlib
import http.server
import itertools
import json
import os
import socket
import sys
import threading
import time
import urllib.parse

SD_LISTEN_FDS_START = 3
PIECE = 65536
meetings = {}
meetings_lock = threading.Lock()
connections = itertools.count(1)


def meet(n, wait):
    """True once n callers are here at once; False if they never are."""
    with meetings_lock:
        b = meetings.get(n)
        if b is None or b.broken:
            b = meetings[n] = threading.Barrier(n)
    try:
        b.wait(wait)
        return True
    except threading.BrokenBarrierError:
        return False


def pattern(n):
    block = bytes(range(256)) * 256
    out = bytearray()
    while len(out) < n:
        out += block
    return bytes(out[:n])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        super().setup()
        self.conn_no = next(connections)
        self.requests = 0
        self.drop_next = False

    def parse_request(self):
        self.requests += 1
        if self.drop_next:
            self.close_connection = True
            return False                     # read, never answered
        return super().parse_request()

    def _n(self, key="n", default="0"):
        q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        return int(q.get(key, [default])[0])

    def _send(self, body, ctype="text/plain", length=True):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("X-Pid", str(os.getpid()))
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return body

    def do_HEAD(self):
        self._send(b"hello %d" % os.getpid())

    def _upgrade(self):
        if self.headers.get("Upgrade", "").lower() != "echo":
            self.send_response(426)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(101)
        self.send_header("Upgrade", "echo")
        self.send_header("Connection", "Upgrade")
        self.end_headers()
        self.wfile.flush()
        seen = b""
        while True:
            data = self.rfile.read1(PIECE)     # what the head's read left too
            if not data:
                break
            self.connection.sendall(data)
            seen = (seen + data)[-8:]
            if seen.endswith(b"bye\n"):
                self.connection.sendall(b"bye\n")
                break
        self.close_connection = True

    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        if "upgrade" in self.headers.get("Connection", "").lower():
            self._upgrade()
            return
        if path == "/die":
            os._exit(3)
        if path == "/sleep":
            time.sleep(self._n())
        if path == "/meet":
            met = meet(self._n(), self._n("t", "10"))
            self.wfile.write(self._send(b"together" if met else b"alone"))
            return
        if path == "/conn":
            self.wfile.write(self._send(b"conn %d request %d" % (self.conn_no, self.requests)))
            return
        if path == "/drop-next":
            self.drop_next = True
            self.wfile.write(self._send(b"next one dropped"))
            return
        if path == "/v10":
            self.protocol_version = "HTTP/1.0"
            self.wfile.write(self._send(b"hello"))
            return
        if path == "/env":
            env = {k: v for k, v in os.environ.items() if k.startswith(("LISTEN_", "WARREN_"))}
            env["pid"] = os.getpid()
            self.wfile.write(self._send(json.dumps(env).encode(), "application/json"))
        elif path == "/headers":
            self.wfile.write(self._send(json.dumps(list(self.headers.items())).encode(),
                                        "application/json"))
        elif path == "/big":
            data = pattern(self._n())
            self._send(data)
            for i in range(0, len(data), PIECE):
                self.wfile.write(data[i:i + PIECE])
        elif path == "/chunked":
            data = pattern(self._n())
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            i, size = 0, 1
            while i < len(data):
                piece = data[i:i + size]
                self.wfile.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                i += len(piece)
                size = size * 3 % 100003 + 1
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/close":
            data = pattern(self._n())
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
            self.close_connection = True
        else:
            self.wfile.write(self._send(b"hello %d" % os.getpid()))

    def _body(self):
        n = int(self.headers.get("Content-Length", "0"))
        return self.rfile.read(n)

    def do_POST(self):
        path = urllib.parse.urlsplit(self.path).path
        body = self._body()
        if path == "/headers":
            self.wfile.write(self._send(json.dumps(list(self.headers.items())).encode(),
                                        "application/json"))
        elif path == "/sha":
            out = b"%d %s" % (len(body), hashlib.sha256(body).hexdigest().encode())
            self.wfile.write(self._send(out))
        else:
            self._send(body)
            for i in range(0, len(body), PIECE):
                self.wfile.write(body[i:i + PIECE])


class ActivatedServer(http.server.ThreadingHTTPServer if sys.argv[1:2] == ["threads"]
                      else http.server.HTTPServer):
    """HTTPServer on an inherited, already listening socket."""

    def __init__(self, sock):
        super().__init__(("", 0), Handler, bind_and_activate=False)
        self.socket.close()
        self.socket = sock


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "fail":
        print("http_app: cannot start: the database is unreachable", file=sys.stderr)
        sys.exit(2)
    if os.environ.get("LISTEN_PID") != str(os.getpid()) or os.environ.get("LISTEN_FDS") != "1":
        print("http_app: not socket-activated", file=sys.stderr)
        sys.exit(1)
    sock = socket.socket(fileno=SD_LISTEN_FDS_START)
    ActivatedServer(sock).serve_forever()


if __name__ == "__main__":
    main()

"""A WebSocket client that speaks RFC 6455 by hand (no library between a
test and the bytes), for the tests of every runtime that serves WebSocket."""

import base64
import hashlib
import os
import struct
import time

import http_helpers as hh

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
TEXT, BINARY, CLOSE, PING, PONG, CONT = 1, 2, 8, 9, 10, 0


class WS:
    """One client WebSocket: the handshake, then frames by hand."""

    def __init__(self, port, path="/", protocols=None, headers=None, key=None, conn=None):
        self.c = conn if conn is not None else hh.Conn(port, timeout=10.0)
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode()
        h = {"Connection": "Upgrade", "Upgrade": "websocket",
             "Sec-WebSocket-Key": self.key, "Sec-WebSocket-Version": "13"}
        if protocols:
            h["Sec-WebSocket-Protocol"] = ", ".join(protocols)
        h.update(headers or {})
        self.c.send(hh.build("GET", path, {k: v for k, v in h.items() if v is not None}))
        self.r = self.c.read_response(head_only=True)
        if self.r.status != 101:
            self.r.body = self._http_body()

    def _http_body(self):
        cl = self.r.header("Content-Length")
        if self.r.header("Transfer-Encoding"):
            return self.c._read_chunked()
        return self._take(int(cl)) if cl else b""

    def _take(self, n):
        while len(self.c.buf) < n:
            assert self.c._fill(), "connection ended; have %r" % self.c.buf[:100]
        out, self.c.buf = self.c.buf[:n], self.c.buf[n:]
        return out

    def send(self, op, payload=b"", fin=True, mask=True, rsv=0):
        if isinstance(payload, str):
            payload = payload.encode()
        n = len(payload)
        b0 = (0x80 if fin else 0) | rsv | op
        mbit = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, mbit | n)
        elif n < 1 << 16:
            head = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            head = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            key = os.urandom(4)
            payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload)) \
                if n < 4096 else _xor(payload, key)
            head += key
        self.c.send(head + payload)

    def recv(self):
        """(fin, opcode, payload) of the next frame; server frames are
        never masked."""
        b0, b1 = self._take(2)
        assert not b1 & 0x80, "a server frame is masked"
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._take(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._take(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, self._take(n)

    def check_accepted(self, protocol=None):
        """The 101 answers this handshake (RFC 6455 4.2.2)."""
        r = self.r
        assert r.status == 101, (r, r.body)
        want = base64.b64encode(hashlib.sha1(self.key.encode() + GUID).digest()).decode()
        assert r.header("Sec-WebSocket-Accept") == want
        assert r.header("Upgrade").lower() == "websocket"
        assert r.header("Connection") == "Upgrade"
        assert r.header("Sec-WebSocket-Protocol") == protocol

    def recv_message(self):
        """(opcode, payload) of the next message, its fragments joined."""
        fin, op, payload = self.recv()
        while not fin:
            fin, cont, more = self.recv()
            assert cont == CONT, cont
            payload += more
        return op, payload

    def close_code(self):
        fin, op, payload = self.recv()
        assert (fin, op) == (True, CLOSE), (fin, op, payload)
        return struct.unpack("!H", payload[:2])[0] if payload else None, payload[2:]

    def close(self):
        self.c.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# Frames RFC 6455 forbids, with the close code each must get (5.1-5.5,
# 8.1); every runtime's WebSocket closes on each, then serves on.
BROKEN_FRAMES = [
    (dict(op=TEXT, payload=b"\xff\xfe"), 1007),                  # not UTF-8
    (dict(op=TEXT, payload=b"x", mask=False), 1002),            # clients must mask
    (dict(op=CONT, payload=b"x"), 1002),                        # nothing to continue
    (dict(op=TEXT, payload=b"x", rsv=0x40), 1002),              # no extension agreed
    (dict(op=PING, payload=b"p", fin=False), 1002),             # fragmented control
    (dict(op=PING, payload=b"p" * 126), 1002),                  # control over 125 bytes
    (dict(op=3, payload=b"x"), 1002),                           # reserved opcode
]


def answer_pings(ws, seconds):
    """Answers the pings that come for `seconds` (nothing else may come);
    how many came."""
    end = time.monotonic() + seconds
    pings = 0
    while time.monotonic() < end:
        fin, op, payload = ws.recv()
        assert op == PING, (op, payload)
        pings += 1
        ws.send(PONG, payload)
    return pings


def recv_past_pings(ws):
    """The next frame that is not a ping (pings may come first)."""
    while True:
        fin, op, payload = ws.recv()
        if op != PING:
            return fin, op, payload


def _xor(data, key):
    n = len(data)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def reversing_echo(ws, reply_reason=b""):
    """The session the test apps of every runtime serve: text comes back
    reversed, binary as it is (a 64-bit length too, fragmented or not), a
    message sent in three fragments with a ping among them gets the pong
    first; then the client closes with 1000 "done" and gets 1000 back, with
    reply_reason (Tomcat's endpoints give the client's reason back)."""
    ws.send(TEXT, "héllo")
    assert ws.recv() == (True, TEXT, "olléh".encode())
    ws.send(BINARY, b"\x00\xff" * 10)
    assert ws.recv() == (True, BINARY, b"\x00\xff" * 10)
    ws.send(TEXT, "")
    assert ws.recv() == (True, TEXT, b"")
    big = os.urandom(70000)
    ws.send(BINARY, big)
    assert ws.recv_message() == (BINARY, big)
    ws.send(TEXT, "abc", fin=False)
    ws.send(PING, b"are you there")
    ws.send(CONT, "def", fin=False)
    ws.send(CONT, "ghi")
    assert ws.recv() == (True, PONG, b"are you there")
    assert ws.recv() == (True, TEXT, b"ihgfedcba")
    ws.send(CLOSE, struct.pack("!H", 1000) + b"done")
    assert ws.close_code() == (1000, reply_reason)


def lines(path):
    """The lines of a file an app writes its events to."""
    with open(path) as f:
        return f.read().splitlines()

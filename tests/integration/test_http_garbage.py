"""Data plane robustness: mutated and truncated requests, sent whole, split
and pipelined, must never crash the router (it runs with ASan+UBSan under
`make test`), and every connection must be accounted for afterwards."""

import random
import socket
import time

import http_helpers as hh

SEEDS = [
    b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nCookie: c=1\r\n\r\n",
    b"POST /b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    b"HEAD /d/../e HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://h/f%2e%2e/g HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
    b"Content-Length: 3\r\n\r\nabc",
]
ROUNDS = 2000                      # bounded: a few seconds


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(4)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:
            data[pos:pos] = bytes(rng.choice(b"\r\n :;%/0123456789abcdefxyz\x00\t")
                                  for _ in range(rng.randint(1, 8)))
        elif op == 2:
            del data[pos:pos + rng.randint(1, 8)]
        else:
            data = data[:pos]
    return bytes(data)


def send_and_drain(port, payload, rng):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    try:
        if rng.random() < 0.3:                    # split at random points
            cut = rng.randrange(len(payload) + 1)
            s.sendall(payload[:cut])
            time.sleep(0.001)
            s.sendall(payload[cut:])
        else:
            s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    except OSError:
        pass                                      # a reset is an acceptable answer
    finally:
        s.close()


def test_mutated_requests_never_crash_the_router(vwarren):
    port = hh.setup(vwarren, [
        {"match": {"uri": "/a"}, "action": {"return": 200}},
        {"match": {"method": "POST"}, "action": {"return": 201}},
        {"action": {"return": 404}},
    ], settings={"http": {"header_read_timeout": 2, "body_read_timeout": 2}})
    router = vwarren.pid("router")
    before = hh.status(vwarren)["connections"]["accepted"]
    rng = random.Random(20261129)
    for i in range(ROUNDS):
        seeds = rng.sample(SEEDS, rng.randint(1, 3))
        payload = b"".join(mutate(rng, s) if rng.random() < 0.8 else s for s in seeds)
        send_and_drain(port, payload, rng)
    assert vwarren.pid("router") == router, "the router was restarted (it crashed)"
    # Every connection is closed and counted; nothing is stuck active.
    st = hh.wait_status(vwarren, lambda s: s["connections"]["active"] == 0
                        and s["connections"]["idle"] == 0)
    c = st["connections"]
    assert c["accepted"] - before == ROUNDS
    assert c["accepted"] == c["closed"]
    # And it still serves.
    assert hh.get(port, "/a").status == 200

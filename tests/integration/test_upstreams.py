"""The "upstreams" of a Unit config: "pass": "upstreams/NAME" proxies each
request to one of the group's servers, in proportion to their weights
(src/router/upstream.c). The servers here are threaded HTTP servers the
test starts on loopback TCP; each says its name."""

import http.server
import itertools
import json
import socket
import socketserver
import threading

import pytest

import http_helpers as hh
import warren_helpers as wh


class Handler(hh.NumberedHandler):
    def do_GET(self):
        body = json.dumps({"name": self.server.name, "host": self.headers.get("Host"),
                           "path": self.path, "conn": self.conn_no}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class TCPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


@pytest.fixture
def servers():
    """name -> the upstream server address as a config key."""
    started, out = [], {}

    def serve(name, srv, key):
        srv.name, srv.numbers = name, itertools.count(1)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        started.append(srv)
        out[name] = key

    for name in ("a", "b", "c"):
        srv = TCPServer(("127.0.0.1", 0), Handler)
        serve(name, srv, "127.0.0.1:%d" % srv.server_address[1])
    yield out
    for srv in started:
        srv.shutdown()
        srv.server_close()


def start(w, upstreams, settings=None):
    return hh.setup(w, [{"match": {"uri": "/up/*"}, "action": {"pass": "upstreams/u"}},
                        {"action": {"return": 204}}],
                    settings=settings, extra={"upstreams": upstreams})


def names(port, n, path="/up/x"):
    out = []
    with hh.Conn(port, timeout=10) as c:
        for _ in range(n):
            r = c.request("GET", path)
            assert r.status == 200, r
            out.append(json.loads(r.body)["name"])
    return out


def test_requests_follow_the_weights(warren, servers):
    port = start(warren, {"u": {"servers": {servers["a"]: {"weight": 1},
                                            servers["b"]: {"weight": 3}}}})
    got = names(port, 40)
    assert got.count("a") == 10 and got.count("b") == 30, got
    # Smooth: "a" comes once in every four, never two "a" in a row.
    assert all(got[i:i + 4].count("a") == 1 for i in range(0, 40, 4)), got


def test_default_weight_alternates_and_fractions_count(warren, servers):
    port = start(warren, {"u": {"servers": {servers["a"]: {}, servers["b"]: {}}}})
    got = names(port, 10)
    assert sorted(got) == ["a"] * 5 + ["b"] * 5
    assert all(got[i] != got[i + 1] for i in range(9)), got
    port = start(warren, {"u": {"servers": {servers["a"]: {"weight": 0.5},
                                            servers["c"]: {"weight": 1}}}})
    got = names(port, 30)
    assert got.count("a") == 10 and got.count("c") == 20, got


def test_host_and_target_forwarded(warren, servers):
    # (a unix socket is no upstream server: refused at validation, as Unit)
    port = start(warren, {"u": {"servers": {servers["c"]: {}}}})
    r = hh.get(port, "/up/p?q=1", host="example.test")
    assert r.status == 200
    assert json.loads(r.body)["name"] == "c"
    assert json.loads(r.body)["host"] == "example.test"
    assert json.loads(r.body)["path"] == "/up/p?q=1"


def test_listener_passes_straight_to_an_upstream(warren, servers):
    port = wh.free_port()
    hh.setup(warren, [], port=port,
             listeners={"127.0.0.1:%d" % port: {"pass": "upstreams/u"}},
             extra={"upstreams": {"u": {"servers": {servers["c"]: {}}}}})
    assert json.loads(hh.get(port, "/anything").body)["name"] == "c"


def test_server_down_is_a_502_for_its_turn_only(warren, servers):
    dead = "127.0.0.1:%d" % _closed_port()
    port = start(warren, {"u": {"servers": {servers["a"]: {}, dead: {}}}})
    statuses = [hh.get(port, "/up/x").status for _ in range(6)]
    # Round robin goes on past a server that refuses (no retry on another):
    # every other request fails.
    assert sorted(statuses) == [200] * 3 + [502] * 3, statuses


def test_weights_change_with_the_config(warren, servers):
    port = start(warren, {"u": {"servers": {servers["a"]: {}, servers["b"]: {}}}})
    assert sorted(names(port, 4)) == ["a", "a", "b", "b"]
    s, j = warren.put("/config/upstreams/u/servers", {servers["b"]: {"weight": 2},
                                                       servers["c"]: {"weight": 2}})
    assert s == 200, j
    got = names(port, 8)
    assert sorted(got) == ["b"] * 4 + ["c"] * 4, got


def test_kept_connections_per_server(warren, servers):
    port = start(warren, {"u": {"servers": {servers["a"]: {}, servers["b"]: {}}}},
                 settings={"http": {"proxy_keepalive": 2}})
    conns = {}
    with hh.Conn(port, timeout=10) as c:
        for _ in range(10):
            j = json.loads(c.request("GET", "/up/x").body)
            conns.setdefault(j["name"], set()).add(j["conn"])
    # Each server saw its five requests on one connection.
    assert conns == {"a": {1}, "b": {1}}, conns


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def test_reconfigured_under_load_loses_nothing(warren, servers):
    """Clients go on while the weights, the servers and proxy_keepalive
    change under them (each config brings a new rotation; kept connections
    outlive configs in the router's pool): every request answered 200."""
    configs = [
        ({servers["a"]: {}, servers["b"]: {}}, 4),
        ({servers["b"]: {"weight": 3}, servers["c"]: {}}, 0),
        ({servers["a"]: {"weight": 0.5}, servers["c"]: {"weight": 2}}, 2),
        ({servers["c"]: {}}, 4),
    ]
    port = start(warren, {"u": {"servers": configs[0][0]}},
                 settings={"http": {"proxy_keepalive": configs[0][1]}})
    statuses, stop = [], threading.Event()

    def client():
        with hh.Conn(port, timeout=10) as c:
            while not stop.is_set():
                statuses.append(c.request("GET", "/up/x").status)

    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    try:
        for i in range(12):
            ups, keep = configs[i % len(configs)]
            s, j = warren.put("/config/upstreams/u/servers", ups)
            assert s == 200, j
            s, j = warren.put("/config/settings/http/proxy_keepalive", keep)
            assert s == 200, j
            # some requests under each config before the next
            seen = len(statuses)
            assert wh.wait_for(lambda: len(statuses) >= seen + 40, 20, 0.01), len(statuses)
    finally:
        stop.set()
        for t in ts:
            t.join(20)
    assert len(statuses) >= 480 and set(statuses) == {200}, sorted(set(statuses))

"""WebSocket in Node.js apps written for Unit: `unit-http/websocket` (the
API of the `websocket` npm package, which Unit's module gives) speaking
RFC 6455 on the tunnel the router opens after a 101, and Node's 'upgrade'
event for other libraries (Debian's `ws`), directly and through Unit's
loader. The client is ws_helpers.WS: frames by hand, no library."""

import os
import shutil
import struct

import pytest

import http_helpers as hh
import warren_helpers as wh
from ws_helpers import (BROKEN_FRAMES, BINARY, CLOSE, PING, TEXT, WS, lines as events,
                        reversing_echo)

NODE = "/usr/bin/node"
PKG = wh.NODE_PKG
NODE_PATH = "/usr/share/nodejs"      # Debian's ws

pytestmark = [
    pytest.mark.skipif(not os.path.exists(NODE), reason="no /usr/bin/node (nodejs)"),
    pytest.mark.skipif(not os.path.exists(os.path.join(PKG, "warren.node")),
                       reason="build/node/unit-http is not built (make build/node/unit-http)"),
]

# unit-http/websocket: every path a behaviour; events.txt records closes.
UNIT_APP = r'''
const fs = require('fs');
const http = require('unit-http');
const WebSocketServer = require('unit-http/websocket').server;
const note = (line) => fs.appendFileSync(__dirname + '/events.txt', line + '\n');

const server = http.createServer((req, res) => {
    res.end('plain ' + req.url + ' upgrade=' + (req.headers.upgrade || '-') + '\n');
});
server.listen(8080);
const wss = new WebSocketServer({ httpServer: server, autoAcceptConnections: false,
                                  maxReceivedMessageSize: 200000 });
wss.on('request', (request) => {
    const path = request.resourceURL.pathname;
    if (path === '/deny') {
        request.reject(403, 'not you');
        return;
    }
    const proto = request.requestedProtocols.includes('v2.chat') ? 'v2.chat' : null;
    const conn = request.accept(proto, request.origin);
    conn.on('close', (code, desc) => note(path + ' close ' + code + ' ' + desc));
    if (path === '/bye') {
        conn.sendUTF('hello');
        conn.close(4001, 'bye now');
        return;
    }
    conn.sendUTF('hi ' + request.resource + ' ' + conn.protocol + ' ' + conn.remoteAddress
                 + ' v' + conn.webSocketVersion);
    conn.on('message', (m) => {
        if (m.type === 'utf8')
            conn.sendUTF(m.utf8Data.split('').reverse().join(''));
        else
            conn.sendBytes(m.binaryData);
    });
});
'''

# Node's 'upgrade' event with the ws package, on an unchanged require('http')
# app run through Unit's loader.
WS_APP = r'''
const http = require('http');
const { WebSocketServer } = require('ws');
const server = http.createServer((req, res) => res.end('plain\n'));
const wss = new WebSocketServer({ server });
wss.on('connection', (ws, req) => {
    ws.send('ws ' + req.url + ' ' + req.socket.remoteAddress);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? data : 'echo ' + data));
});
server.listen(3000);
'''

# require('websocket') under the loader is unit-http/websocket.
LOADED_APP = r'''
const http = require('http');
const websocket = require('websocket');
const server = http.createServer((req, res) => res.end('plain\n')).listen(1);
new websocket.server({ httpServer: server, autoAcceptConnections: true })
    .on('connect', (conn) => conn.sendUTF('auto ' + (websocket.server.name)));
'''

# No 'upgrade' listener: an upgrade request is an ordinary request.
PLAIN_APP = r'''
require('unit-http').createServer((req, res) => {
    res.end('request ' + req.url + ' upgrade=' + req.headers.upgrade + '\n');
}).listen(80);
'''

LOADER = ["node", "--loader", "unit-http/loader.mjs", "--require", "unit-http/loader"]


def app(appdir, argv, executable=NODE):
    return {"type": "external", "executable": executable, "arguments": argv,
            "working_directory": appdir, "processes": 1,
            "environment": {"NODE_PATH": NODE_PATH}}


def start(warren_factory, settings=None):
    appdir = hh.make_root("warren-node-ws-")
    hh.write(appdir, "unit.js", UNIT_APP)
    hh.write(appdir, "wsapp.js", WS_APP)
    hh.write(appdir, "loaded.js", LOADED_APP)
    hh.write(appdir, "plain.js", PLAIN_APP)
    wh.node_package(appdir)
    ev = os.path.join(appdir, "events.txt")
    open(ev, "w").close()
    os.chmod(ev, 0o666)
    w = warren_factory()
    port = hh.setup(w, [
        {"match": {"uri": "/ws/*"}, "action": {"pass": "applications/wslib"}},
        {"match": {"uri": "/loaded/*"}, "action": {"pass": "applications/loaded"}},
        {"match": {"uri": "/plain/*"}, "action": {"pass": "applications/plain"}},
        {"action": {"pass": "applications/unit"}}], settings=settings, extra={"applications": {
            "unit": app(appdir, ["unit.js"]),
            "wslib": app(appdir, LOADER + ["wsapp.js"], executable="/usr/bin/env"),
            "plain": app(appdir, ["plain.js"]),
            "loaded": app(appdir, LOADER + ["loaded.js"], executable="/usr/bin/env")}})
    return w, port, ev, appdir


@pytest.fixture
def nws(warren_factory):
    w, port, ev, appdir = start(warren_factory)
    yield w, port, ev
    shutil.rmtree(appdir, ignore_errors=True)


def test_handshake_echo_fragments_and_close(nws):
    w, port, ev = nws
    with WS(port, "/chat?room=1", protocols=["v1.chat", "v2.chat"]) as ws:
        ws.check_accepted("v2.chat")
        assert ws.recv() == (True, TEXT, b"hi /chat?room=1 v2.chat 127.0.0.1 v13")
        reversing_echo(ws)
        assert wh.wait_for(ws.c.closed, 5.0)
    assert wh.wait_for(lambda: "/chat close 1000 done" in events(ev), 5.0), events(ev)


def test_no_protocol_chosen(nws):
    w, port, ev = nws
    with WS(port, "/plain") as ws:
        ws.check_accepted()
        assert ws.recv() == (True, TEXT, b"hi /plain null 127.0.0.1 v13")


def test_server_closes(nws):
    w, port, ev = nws
    with WS(port, "/bye") as ws:
        assert ws.recv() == (True, TEXT, b"hello")
        assert ws.close_code() == (4001, b"bye now")
        ws.send(CLOSE, struct.pack("!H", 4001))
        assert wh.wait_for(ws.c.closed, 5.0)
    assert wh.wait_for(lambda: "/bye close 4001 bye now" in events(ev), 5.0), events(ev)


def test_reject_is_an_http_answer(nws):
    w, port, ev = nws
    with WS(port, "/deny") as ws:
        assert ws.r.status == 403
        assert ws.r.header("X-WebSocket-Reject-Reason") == "not you"
        assert ws.r.body == b"not you\n"


def test_bad_handshake_is_400(nws):
    w, port, ev = nws
    with WS(port, "/chat", headers={"Sec-WebSocket-Key": "short"}) as ws:
        assert ws.r.status == 400
        assert b"Sec-WebSocket-Key" in ws.r.body


@pytest.mark.parametrize("frame,code", BROKEN_FRAMES + [
    (dict(op=BINARY, payload=b"y" * 200001), 1009),             # over maxReceivedMessageSize
])
def test_broken_frames_close_with_their_code(nws, frame, code):
    w, port, ev = nws
    with WS(port, "/broken") as ws:
        assert ws.recv()[1] == TEXT            # the greeting
        ws.send(**frame)
        got, _ = ws.close_code()
        assert got == code
        assert wh.wait_for(ws.c.closed, 5.0)
    assert wh.wait_for(lambda: any(line.startswith("/broken close %d" % code)
                                   for line in events(ev)), 5.0), events(ev)


def test_client_vanishes(nws):
    w, port, ev = nws
    ws = WS(port, "/gone")
    assert ws.recv()[1] == TEXT
    ws.close()
    assert wh.wait_for(lambda: "/gone close 1006 " in events(ev), 5.0), events(ev)
    # The worker goes on.
    with WS(port, "/after") as ws:
        assert ws.recv()[1] == TEXT


def test_upgrade_without_listener_is_a_request(nws):
    """Node gives an upgrade request to 'request' listeners when the
    server has no 'upgrade' listener: an ordinary answer, no tunnel."""
    w, port, ev = nws
    with WS(port, "/plain/x") as ws:
        assert ws.r.status == 200
        assert ws.r.body == b"request /plain/x upgrade=websocket\n"
    r = hh.get(port, "/plain-get")
    assert r.status == 200 and r.body == b"plain /plain-get upgrade=-\n"


def test_frame_size_follows_settings(warren_factory):
    """max_frame_size of settings.http.websocket is the default
    maxReceivedFrameSize (as Unit applies it)."""
    w, port, ev, appdir = start(warren_factory,
                                settings={"http": {"websocket": {"max_frame_size": 1000}}})
    try:
        with WS(port, "/small") as ws:
            assert ws.recv()[1] == TEXT
            ws.send(TEXT, "a" * 1000)
            assert ws.recv() == (True, TEXT, b"a" * 1000)
            ws.send(TEXT, "a" * 1001)
            assert ws.close_code()[0] == 1009
    finally:
        shutil.rmtree(appdir, ignore_errors=True)


def test_keepalive_pings_follow_settings(warren_factory):
    w, port, ev, appdir = start(warren_factory,
                                settings={"http": {"websocket": {"keepalive_interval": 1}}})
    try:
        with WS(port, "/quiet") as ws:
            assert ws.recv()[1] == TEXT
            ws.c.s.settimeout(10.0)
            assert ws.recv()[1] == PING         # unprompted, from the app
    finally:
        shutil.rmtree(appdir, ignore_errors=True)


def test_ws_library_through_the_loader(nws):
    w, port, ev = nws
    with WS(port, "/ws/room") as ws:
        ws.check_accepted()
        assert ws.recv() == (True, TEXT, b"ws /ws/room 127.0.0.1")
        ws.send(TEXT, "abc")
        assert ws.recv() == (True, TEXT, b"echo abc")
        blob = os.urandom(100000)
        ws.send(BINARY, blob)
        assert ws.recv() == (True, BINARY, blob)
        ws.send(CLOSE, struct.pack("!H", 1000))
        assert ws.close_code()[0] == 1000
        assert wh.wait_for(ws.c.closed, 5.0)
    # The same app's plain requests are requests.
    r = hh.get(port, "/ws/plain")
    assert r.status == 200 and r.body == b"plain\n"


def test_ws_library_refusal(nws):
    """ws answers a handshake it refuses with a raw 400 on the socket:
    it reaches the client as an HTTP answer."""
    w, port, ev = nws
    with WS(port, "/ws/x", headers={"Sec-WebSocket-Version": "7"}) as ws:
        assert ws.r.status in (400, 426), ws.r.status


def test_loader_maps_websocket_package(nws):
    w, port, ev = nws
    with WS(port, "/loaded/x") as ws:
        assert ws.r.status == 101
        assert ws.recv() == (True, TEXT, b"auto WebSocketServer")

"""Node.js applications written for NGINX Unit, run unchanged on Warren
through Warren's own `unit-http` npm package (build/node/unit-http: http.js,
loader.js, loader.mjs and warren.node, the native addon over libwarren).

Each test starts a real warrend, writes the app's sources (strings below)
into a temp dir user nobody can read, with node_modules/unit-http a copy
of the build's package (wh.node_package: where `npm link unit-http` would
put a link; a copy, since nobody may not enter the repository), PUTs an `external` application running /usr/bin/node in it and talks
HTTP to the listener:

  - the config forms of Unit: A, `require('unit-http')` with
    `node app.js` (and app.js itself as the executable, `#!/usr/bin/env
    node`); B, the loader (`node --loader unit-http/loader.mjs --require
    unit-http/loader app`) for a CommonJS app (`require('http')`,
    `require('node:http')`) and an ES module (`import http from 'http'`,
    `import { createServer } from 'node:http'`); C, Express from Debian
    (/usr/share/nodejs through NODE_PATH) both ways. The port an app listens
    on is ignored: nothing listens there;
  - the Server (createServer with options, new Server, 'request',
    'listening', the listen callback, address(), setTimeout(), close());
  - IncomingMessage: method, url, httpVersion, headers with Node's rules
    for duplicates (values as latin1, as Node's parser), rawHeaders as sent,
    trailers, complete, socket addresses (IPv4, IPv6, encrypted on HTTPS),
    async iteration, setEncoding;
  - bodies both ways with flow control: 20 MiB uploads hashed (Content-Length
    and chunked) and echoed by req.pipe(res), eight 4 MiB echoes at once; an
    upload the app does not read is not taken whole; a 16 MiB response to a
    client that reads nothing makes write() return false, then 'drain'
    follows, and holds back no other response;
  - ServerResponse: the header API, writeHead forms, Node's errors
    (ERR_HTTP_HEADERS_SENT, ERR_INVALID_HTTP_TOKEN, ERR_INVALID_CHAR,
    ERR_HTTP_INVALID_STATUS_CODE, caught by the app and reported in its
    answer), flushHeaders, 'finish' then 'close', write/end callbacks and
    encodings, statusCode/statusMessage, HEAD, framing fields the app sets;
  - 64 requests held at once by one worker ("processes": 1, a barrier);
  - a client that leaves (before the body, mid-body, mid-response):
    'aborted' and 'close' (the app counts them, a later request reports the
    counts), the worker serves on;
  - an uncaught exception kills the worker: 502/503, a new one serves;
  - restart (also while a request is in flight: answered first),
    reconfiguration and graceful stop: the server's 'close' event (the app
    writes the pid into out/closed), the worker exits 0 (its
    process.on('exit') writes the code into out/exits); server.close()
    by the app.

Where Node's behaviour is asserted (fields, duplicates, events, errors),
the same app run under plain `node` with Node's own http gives the same
answers, except for what the spec documents (the standard reason phrase).

Run with Debian's /usr/bin/python3. Skipped as a whole without /usr/bin/node
or build/node/unit-http/warren.node (make build/node/unit-http); the
Express tests without /usr/share/nodejs/express (apt-get install node-express).
"""

import concurrent.futures
import hashlib
import json
import os
import shutil
import signal
import socket
import threading

import pytest

import http_helpers as hh
import tls_helpers as th
import warren_helpers as wh

NODE = "/usr/bin/node"
PKG = wh.NODE_PKG
EXPRESS = "/usr/share/nodejs/express"

if not os.access(NODE, os.X_OK):
    pytest.skip("%s is missing (apt-get install nodejs)" % NODE, allow_module_level=True)
if not os.path.exists(os.path.join(PKG, "warren.node")):
    pytest.skip("%s/warren.node is missing (make build/node/unit-http)" % PKG,
                allow_module_level=True)

needs_express = pytest.mark.skipif(
    not os.path.exists(os.path.join(EXPRESS, "package.json")),
    reason="%s is missing (apt-get install node-express)" % EXPRESS)

MiB = 1024 * 1024
WAIT_S = 15.0            # bounds a wait that should end at once
APP = "node"             # the application's name in the config

# Unit's loader form (Unit 1.29+): the app unchanged, Node's http swapped.
LOADER_ARGS = ["node", "--loader", "unit-http/loader.mjs", "--require", "unit-http/loader"]

# ------------------------------------------------------------------ the apps

# The main test application, dispatching on the path. The first line, how it
# gets its `http`, is prepended: require('unit-http') (form A) or
# require('http') / require('node:http') (form B, under the loader).
COMMON = r'''
// The test application of tests/integration/test_node.py.
const crypto = require('crypto');
const EventEmitter = require('events');
const fs = require('fs');
const path = require('path');
const stream = require('stream');

const OUT = path.join(__dirname, 'out');
const S = { listenCallbacks: 0, listeningEvents: 0, listenReturnsServer: null,
            tags: {}, held: {}, barriers: {}, flushed: {} };

function note(file, line) {
    fs.appendFileSync(path.join(OUT, file), line + '\n');
}

function params(req) {
    return new URL(req.url, 'http://test.invalid').searchParams;
}

function stats(tag) {
    if (!S.tags[tag]) {
        S.tags[tag] = { events: [], aborted: 0, reqClose: 0, resClose: 0, finish: 0,
                        received: 0, errors: [], started: false,
                        falses: 0, drains: 0, written: 0, done: false };
    }
    return S.tags[tag];
}

// Counts what happens to an exchange whose client may go.
function watch(req, res, st) {
    st.started = true;
    req.on('aborted', () => { st.aborted++; });
    req.on('close', () => { st.reqClose++; });
    req.on('error', (e) => { st.errors.push(e.code || e.message); });
    res.on('close', () => { st.resClose++; });
    res.on('finish', () => { st.finish++; });
}

function sendJson(res, code, obj) {
    const body = Buffer.from(JSON.stringify(obj));
    res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': body.length });
    res.end(body);
}

function caught(f) {
    try {
        f();
        return null;
    } catch (e) {
        return { code: e.code === undefined ? null : e.code, name: e.name };
    }
}

// Bytes (offset % 251): any piece of the stream is a slice of PATTERN.
const PATTERN = Buffer.alloc(65536 + 251);
for (let i = 0; i < PATTERN.length; i++)
    PATTERN[i] = i % 251;

function patterned(off, n) {
    const s = off % 251;
    return PATTERN.subarray(s, s + n);
}

const ROUTES = {
    '/pid': (req, res) => sendJson(res, 200, { pid: process.pid }),

    // Everything about the request, and the response's initial state.
    '/info': (req, res) => {
        const s = req.socket;
        const out = {
            pid: process.pid,
            method: req.method, url: req.url, httpVersion: req.httpVersion,
            major: req.httpVersionMajor, minor: req.httpVersionMinor,
            headers: req.headers, rawHeaders: req.rawHeaders, trailers: req.trailers,
            readable: req instanceof stream.Readable,
            socket: s ? {
                remoteAddress: s.remoteAddress, remotePort: s.remotePort,
                remotePortType: typeof s.remotePort,
                localAddress: s.localAddress, localPort: s.localPort,
                remoteFamily: s.remoteFamily, encrypted: s.encrypted === true,
            } : null,
            connectionIsSocket: req.connection === req.socket,
            resReq: res.req === req, resSocket: !!res.socket,
            statusCode: res.statusCode, sendDate: res.sendDate, headersSent: res.headersSent,
            resSetTimeout: res.setTimeout(60000) === res,
            serverSetTimeout: server.setTimeout(120000) === server,
            serverIsEventEmitter: server instanceof EventEmitter,
            address: caught(() => server.address()),
            listenCallbacks: S.listenCallbacks, listeningEvents: S.listeningEvents,
            listenReturnsServer: S.listenReturnsServer,
            // the rest of Node's http is there (the client side, the tables)
            httpApi: { notFound: http.STATUS_CODES[404], hasGet: http.METHODS.includes('GET'),
                       request: typeof http.request, get: typeof http.get },
        };
        const chunks = [];
        req.on('data', (c) => chunks.push(c));
        req.on('end', () => {
            out.body = Buffer.concat(chunks).toString('latin1');
            out.completeAtEnd = req.complete;
            sendJson(res, 200, out);
        });
    },

    // The body by async iteration: its length and sha256, how it came.
    '/sha': async (req, res) => {
        const hash = crypto.createHash('sha256');
        let len = 0, chunks = 0, max = 0, allBuffers = true;
        for await (const c of req) {
            if (!Buffer.isBuffer(c))
                allBuffers = false;
            hash.update(c);
            len += c.length;
            chunks++;
            max = Math.max(max, c.length);
        }
        sendJson(res, 200, { len, sha256: hash.digest('hex'), chunks, max, allBuffers,
                             complete: req.complete,
                             te: req.headers['transfer-encoding'] || null,
                             cl: req.headers['content-length'] || null });
    },

    // setEncoding('utf8'): strings, multi-byte characters whole.
    '/text': (req, res) => {
        req.setEncoding('utf8');
        let text = '', allStrings = true;
        req.on('data', (c) => {
            if (typeof c !== 'string')
                allStrings = false;
            text += c;
        });
        req.on('end', () => sendJson(res, 200, {
            chars: text.length, allStrings, allEuro: text === '\u20ac'.repeat(text.length) }));
    },

    '/echo': (req, res) => {
        res.setHeader('Content-Type', 'application/octet-stream');
        req.pipe(res);
    },

    // Holds the request, reading none of its body, until /resume.
    '/paused': (req, res) => {
        S.held[params(req).get('tag')] = { req, res };
    },
    '/peek': (req, res) => {
        const h = S.held[params(req).get('tag')];
        sendJson(res, 200, h ? { held: true, readableLength: h.req.readableLength }
                             : { held: false });
    },
    '/resume': (req, res) => {
        const tag = params(req).get('tag');
        const h = S.held[tag];
        if (!h)
            return sendJson(res, 404, { held: false });
        delete S.held[tag];
        const hash = crypto.createHash('sha256');
        let len = 0;
        h.req.on('data', (c) => { hash.update(c); len += c.length; });
        h.req.on('end', () => sendJson(h.res, 200, { len, sha256: hash.digest('hex') }));
        sendJson(res, 200, { resumed: true });
    },

    // mb MiB of the pattern, written while write() says yes, then on 'drain'.
    '/big': (req, res) => {
        const q = params(req), st = stats(q.get('tag'));
        const total = Number(q.get('mb')) * 1048576;
        watch(req, res, st);
        res.setHeader('Content-Type', 'application/octet-stream');
        res.setHeader('Content-Length', total);
        res.on('drain', () => { st.drains++; });
        let off = 0;
        function pump() {
            while (off < total) {
                const n = Math.min(65536, total - off);
                const ok = res.write(patterned(off, n));
                off += n;
                st.written = off;
                if (!ok) {
                    st.falses++;
                    res.once('drain', pump);
                    return;
                }
            }
            res.end(() => { st.done = true; });
        }
        pump();
    },

    '/stats': (req, res) => sendJson(res, 200, stats(params(req).get('tag'))),

    '/headers-api': (req, res) => {
        const r = { before: { headersSent: res.headersSent, statusCode: res.statusCode } };
        res.setHeader('X-Num', 42);
        res.setHeader('X-Arr', ['a', 'b']);
        res.setHeader('X-Gone', 'soon');
        res.setHeader('X-Int', 7);
        res.setHeader('Content-Type', 'application/json');
        r.getNum = res.getHeader('x-num');
        r.getArr = res.getHeader('X-ARR');
        r.hasGone = res.hasHeader('x-gone');
        res.removeHeader('X-Gone');
        r.hasGoneAfter = res.hasHeader('X-Gone');
        r.getGone = res.getHeader('x-gone') === undefined ? 'undefined' : 'defined';
        res.appendHeader('X-App', 'one');
        res.appendHeader('X-App', ['two', 'three']);
        r.getApp = res.getHeader('x-app');
        r.names = res.getHeaderNames();
        r.headers = res.getHeaders();
        r.writeHeadReturnsRes = res.writeHead(201, { 'X-Head': 'h', 'X-Num': '43' }) === res;
        r.after = { headersSent: res.headersSent, statusCode: res.statusCode };
        res.end(JSON.stringify(r));
    },

    '/writehead-array': (req, res) => {
        const r = res.writeHead(202, 'Custom Reason',
                                ['X-Dup', 'one', 'X-Dup', 'two', 'X-Flat', 'flat']) === res;
        res.end(JSON.stringify({ statusCode: res.statusCode, statusMessage: res.statusMessage,
                                 returnsRes: r }));
    },
    '/writehead-merge': (req, res) => {
        res.setHeader('X-Over', 'from-setHeader');
        res.setHeader('X-Kept', 'kept');
        res.writeHead(200, ['X-Over', 'from-writeHead', 'X-Flat', 'flat']);
        res.end('merged');
    },

    // Node's errors, caught: what was thrown is the answer.
    '/errors': (req, res) => {
        const r = {};
        r.badName = caught(() => res.setHeader('Bad Name', 'x'));
        r.colonName = caught(() => res.setHeader('X:Colon', 'x'));
        r.crlf = caught(() => res.setHeader('X-Ok', 'a\r\nX-Injected: 1'));
        r.lf = caught(() => res.setHeader('X-Ok', 'a\nb'));
        r.status1000 = caught(() => res.writeHead(1000));
        r.status99 = caught(() => res.writeHead(99));
        r.headersSentBefore = res.headersSent;
        res.writeHead(200, { 'Content-Type': 'application/json' });
        r.lateSet = caught(() => res.setHeader('X-Late', '1'));
        res.end(JSON.stringify(r));
    },

    // The head out at once, the body when /release says so.
    '/flush': (req, res) => {
        const tag = params(req).get('tag');
        res.setHeader('X-Flushed', 'yes');
        res.setHeader('Content-Type', 'text/plain');
        res.flushHeaders();
        S.flushed[tag] = { res, headersSent: res.headersSent };
    },
    '/release': (req, res) => {
        const tag = params(req).get('tag');
        const f = S.flushed[tag];
        if (!f)
            return sendJson(res, 404, { released: false });
        delete S.flushed[tag];
        f.res.end('after release');
        sendJson(res, 200, { released: true, headersSent: f.headersSent });
    },

    '/events': (req, res) => {
        const st = stats(params(req).get('tag'));
        res.on('finish', () => {
            st.events.push('finish');
            st.writableFinishedAtFinish = res.writableFinished;
        });
        res.on('close', () => st.events.push('close'));
        res.setHeader('Content-Type', 'text/plain');
        st.beforeEnd = { writableEnded: res.writableEnded, writableFinished: res.writableFinished,
                         finished: res.finished };
        st.writeReturned = res.write('68656c6c6f', 'hex', () => st.events.push('write-cb'));
        st.endReturnsRes = res.end('IHdvcmxk', 'base64', () => st.events.push('end-cb')) === res;
        st.afterEnd = { writableEnded: res.writableEnded, finished: res.finished };
    },

    '/status-message': (req, res) => {
        res.statusCode = 404;
        res.statusMessage = 'Nothing Here';
        res.end('custom status');
    },

    // Framing fields the app has no say over.
    '/framing': (req, res) => {
        res.setHeader('Transfer-Encoding', 'chunked');
        res.setHeader('Connection', 'close');
        res.setHeader('Content-Type', 'text/plain');
        res.write('framed ');
        res.end('by the router');
    },
    '/content-length': (req, res) => {
        res.setHeader('Content-Length', 5);
        res.end('12345');
    },

    '/head': (req, res) => {
        res.setHeader('Content-Type', 'text/plain');
        res.setHeader('X-Method', req.method);
        res.end('a body that a HEAD answer does not carry');
    },

    // Held until n requests of the tag arrived, then all answered.
    '/barrier': (req, res) => {
        const q = params(req), tag = q.get('tag'), n = Number(q.get('n'));
        const b = S.barriers[tag] || (S.barriers[tag] = []);
        b.push(res);
        if (b.length === n) {
            delete S.barriers[tag];
            for (const r of b)
                sendJson(r, 200, { pid: process.pid, n });
        }
    },

    // Never answered: counts what happens when the client goes.
    '/hang': (req, res) => {
        const q = params(req), st = stats(q.get('tag'));
        watch(req, res, st);
        if (q.get('read'))
            req.on('data', (c) => { st.received += c.length; });
    },

    // Answered once out/NAME exists (looked for every 20 ms).
    '/wait-file': (req, res) => {
        const name = params(req).get('name');
        note('started-' + name, process.pid);
        const iv = setInterval(() => {
            if (fs.existsSync(path.join(OUT, name))) {
                clearInterval(iv);
                sendJson(res, 200, { pid: process.pid });
            }
        }, 20);
    },

    '/throw': () => {
        throw new Error('node-test-uncaught-4711');
    },
    '/throw-later': () => {
        setImmediate(() => { throw new Error('node-test-uncaught-4712'); });
    },

    '/selfclose': (req, res) => {
        res.on('finish', () => server.close(() => note('closecb', process.pid)));
        res.end('closing');
    },
};

function handler(req, res) {
    const p = req.url.split('?')[0];
    const route = ROUTES[p] || (p.startsWith('/info') ? ROUTES['/info'] : null);
    if (!route)
        return sendJson(res, 404, { error: 'no route ' + p });
    route(req, res);
}

const server = http.createServer(handler);
server.on('listening', () => { S.listeningEvents++; });
server.on('close', () => note('closed', process.pid));
process.on('exit', (code) => note('exits', process.pid + ' ' + code));
S.listenReturnsServer = server.listen(Number(process.env.IGNORED_PORT || 8080),
                                      () => { S.listenCallbacks++; }) === server;
'''


def common_app(first_line):
    return "'use strict';\n" + first_line + "\n" + COMMON


# Form A as an executable script.
SHEBANG_APP = r'''#!/usr/bin/env node
'use strict';
const http = require('unit-http');
let listened = 0;
http.createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ form: 'shebang', pid: process.pid, listened, url: req.url }));
}).listen(8080, '127.0.0.1', () => { listened++; });
'''

# new Server(options), no listener: 'request' events; listen(port, host,
# backlog, cb).
SERVER_API_APP = r'''
'use strict';
const http = require('unit-http');
const EventEmitter = require('events');
const seen = { listening: 0, callbacks: 0 };
const server = new http.Server({});
server.on('request', (req, res) => {
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify({
        pid: process.pid, url: req.url, ...seen,
        isEventEmitter: server instanceof EventEmitter,
        isServer: server instanceof http.Server,
        setTimeoutReturnsServer: server.setTimeout(5000) === server,
        addressThrew: (() => { try { server.address(); return false; } catch (e) { return true; } })(),
    }));
});
server.on('listening', () => { seen.listening++; });
seen.listenReturnsServer = server.listen(Number(process.env.IGNORED_PORT), '127.0.0.1', 511,
                                         () => { seen.callbacks++; }) === server;
'''

# Form B, ES modules.
ESM_APP = r'''%(import)s

let listened = 0;
const server = %(create)s((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
        res.writeHead(200, { 'Content-Type': 'application/json' });
        res.end(JSON.stringify({ form: '%(form)s', pid: process.pid, method: req.method,
                                 url: req.url, body, listened }));
    });
});
server.listen(Number(process.env.IGNORED_PORT), () => { listened++; });
'''

ESM_APPS = {
    "esm-default": {"import": "import http from 'http';", "create": "http.createServer"},
    "esm-named": {"import": "import { createServer } from 'node:http';", "create": "createServer"},
}

# Form C: one Express app, served through unit-http directly or under the
# loader with app.listen.
EXPRESS_APP = r'''
'use strict';
const express = require('express');
const app = express();
app.use(express.json());
app.get('/users/:id', (req, res) => {
    res.json({ id: req.params.id, q: req.query.q === undefined ? null : req.query.q,
               pid: process.pid });
});
app.post('/items', (req, res) => {
    res.status(201).json({ created: req.body });
});
app.get('/teapot', (req, res) => {
    res.status(418).send('short and stout');
});
app.get('/ua', (req, res) => {
    res.set('X-Express', 'yes');
    res.type('text');
    res.send(req.get('User-Agent'));
});
module.exports = app;
'''

EXPRESS_DIRECT = r'''
'use strict';
const app = require('./express_app');
require('unit-http').createServer(app).listen(80);
'''

EXPRESS_LOADER = r'''
'use strict';
const app = require('./express_app');
app.listen(Number(process.env.IGNORED_PORT));
'''


def make_site():
    """The apps' directory (readable by nobody), out/ writable by the app,
    node_modules/unit-http -> the build's package."""
    root = hh.make_root("warren-node-")
    files = {
        "app.js": common_app("const http = require('unit-http');"),
        "app_http.js": common_app("const http = require('http');"),
        "app_nodehttp.js": common_app("const http = require('node:http');"),
        "shebang.js": SHEBANG_APP,
        "server_api.js": SERVER_API_APP,
        "express_app.js": EXPRESS_APP,
        "express_direct.js": EXPRESS_DIRECT,
        "express_loader.js": EXPRESS_LOADER,
    }
    for form, v in ESM_APPS.items():
        files[form + ".mjs"] = ESM_APP % dict(v, form=form)
    for rel, text in files.items():
        hh.write(root, rel, text)
    os.chmod(os.path.join(root, "shebang.js"), 0o755)
    out = os.path.join(root, "out")
    os.mkdir(out)
    os.chmod(out, 0o777)
    wh.node_package(root)
    return root


# ------------------------------------------------------------------ helpers

@pytest.fixture
def node(warren):
    """(warrend, the apps' directory)."""
    root = make_site()
    yield warren, root
    shutil.rmtree(root, ignore_errors=True)


def app_cfg(root, entry="app.js", form="direct", env=None, **kw):
    """An external app running entry: form "direct" (node entry), "shebang"
    (entry is the executable) or "loader" (Unit's loader arguments). The
    port the app listens on is IGNORED_PORT in its environment."""
    if form == "direct":
        a = {"executable": NODE, "arguments": [entry]}
    elif form == "shebang":
        a = {"executable": os.path.join(root, entry)}
    else:
        assert form == "loader", form
        a = {"executable": "/usr/bin/env", "arguments": LOADER_ARGS + [entry]}
    a.update({"type": "external", "working_directory": root, "processes": 1})
    e = {"IGNORED_PORT": str(wh.free_port())}
    e.update(env or {})
    a["environment"] = e
    a.update(kw)
    return a


SETTINGS = {"http": {"max_body_size": 64 * MiB, "body_read_timeout": 60,
                     "send_timeout": 60}}


def start(w, app, listeners=None):
    """PUT the app, every request passed to it. Returns the port."""
    return hh.setup(w, [{"action": {"pass": "applications/" + APP}}], listeners=listeners,
                    settings=SETTINGS, extra={"applications": {APP: app}})


def get_json(port, path, **kw):
    r = hh.get(port, path, **kw)
    assert r.status == 200, r
    assert (r.header("Content-Type") or "").startswith("application/json"), r
    return json.loads(r.body)


def pid_of(port):
    return get_json(port, "/pid")["pid"]


def ignored_port(app):
    return int(app["environment"]["IGNORED_PORT"])


def out_lines(root, name):
    try:
        with open(os.path.join(root, "out", name)) as f:
            return f.read().split("\n")[:-1]
    except FileNotFoundError:
        return []


def closed_pids(root):
    """pids whose server emitted 'close' (out/closed, one per line)."""
    return [int(x) for x in out_lines(root, "closed")]


def exit_codes(root):
    """{pid: code} from the app's process.on('exit') (out/exits)."""
    return {int(p): int(c) for p, c in (x.split() for x in out_lines(root, "exits"))}


def sha(b):
    return hashlib.sha256(b).hexdigest()


def chunked(body, size=100000):
    return b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size])
                    for i in range(0, len(body), size)) + b"0\r\n\r\n"


def pattern(n):
    """What /big sends: byte i is i % 251."""
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def conn_on(sock):
    """An hh.Conn over a socket already connected."""
    c = hh.Conn.__new__(hh.Conn)
    c.s, c.buf, c.eof = sock, b"", False
    return c


def slow_conn(port):
    """A connection with a small receive buffer, for a client that reads
    nothing for a while: the answer backs up to the app soon."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(60)
    s.connect(("127.0.0.1", port))
    return conn_on(s)


def fill_head(c):
    """Read until a whole response head is in c.buf (left there)."""
    while b"\r\n\r\n" not in c.buf:
        assert c._fill(), "connection ended before a response head: %r" % c.buf[:300]
    return c.buf.partition(b"\r\n\r\n")[0]


def new_pid(port, old):
    """Wait for /pid to answer from a pid other than old; return it."""
    return wh.wait_for(lambda: (lambda p: p if p != old else None)(pid_of(port)), WAIT_S, 0.05)


def stats_when(port, tag, pred):
    """Poll /stats?tag until pred(stats); return them (or the last ones)."""
    last = [None]

    def f():
        last[0] = get_json(port, "/stats?tag=" + tag)
        return pred(last[0])
    wh.wait_for(f, WAIT_S, 0.05)
    return last[0]


def fields(r, name):
    return [v for k, v in r.headers if k.lower() == name.lower()]


# ------------------------------------------------------------------ 1. config forms

HTTP_API = {"notFound": "Not Found", "hasGet": True, "request": "function", "get": "function"}


def assert_served_by_warren(w, pid, app):
    """pid is the app's worker, and it does not listen on the port it gave
    to listen() (asked of its own sockets: another test running beside
    this one may have taken that free port since)."""
    assert pid in w.app_processes()[1], (pid, w.app_processes(), w.children())
    assert not wh.listen_inodes_tcp(ignored_port(app)) & wh.socket_inodes_of(pid), \
        "the app listens on its own port"


def test_form_a_require_unit_http(node):
    """`const http = require('unit-http'); http.createServer(h).listen(PORT, cb)`
    run as `node app.js`: the port is ignored; listen returned the server,
    its callback ran once and 'listening' was emitted once before the first
    request."""
    w, root = node
    app = app_cfg(root, "app.js")
    port = start(w, app)
    d = get_json(port, "/info")
    assert_served_by_warren(w, d["pid"], app)
    assert (d["listenCallbacks"], d["listeningEvents"], d["listenReturnsServer"]) == \
        (1, 1, True), d
    assert d["httpApi"] == HTTP_API, d
    assert wh.proc_cmdline(d["pid"]) == "%s app.js" % NODE


def test_form_a_executable_script_with_shebang(node):
    """app.js itself as the executable (`#!/usr/bin/env node`, mode 755),
    createServer(options, listener), listen(port, host, cb)."""
    w, root = node
    app = app_cfg(root, "shebang.js", form="shebang")
    port = start(w, app)
    d = get_json(port, "/some/where?x=1")
    assert (d["form"], d["url"], d["listened"]) == ("shebang", "/some/where?x=1", 1), d
    assert d["pid"] in w.app_processes()[1], d
    assert "shebang.js" in wh.proc_cmdline(d["pid"]), wh.proc_cmdline(d["pid"])


def test_server_api_new_server_request_event(node):
    """new Server(options) without a listener serves through its 'request'
    event; listen(port, host, backlog, cb) returns the server, calls cb,
    emits 'listening'; a Server is an EventEmitter; setTimeout returns it;
    address() does not throw."""
    w, root = node
    app = app_cfg(root, "server_api.js")
    port = start(w, app)
    d = get_json(port, "/api?y=2")
    assert_served_by_warren(w, d["pid"], app)
    assert d == {"pid": d["pid"], "url": "/api?y=2", "listening": 1, "callbacks": 1,
                 "listenReturnsServer": True, "isEventEmitter": True, "isServer": True,
                 "setTimeoutReturnsServer": True, "addressThrew": False}, d


@pytest.mark.parametrize("entry", ["app_http.js", "app_nodehttp.js"])
def test_form_b_loader_commonjs(node, entry):
    """Unit's loader arguments, the app unchanged with require('http') or
    require('node:http'): Warren's server serves it (the port is ignored),
    bodies included; the rest of Node's http (STATUS_CODES, METHODS, the
    client) is still there."""
    w, root = node
    app = app_cfg(root, entry, form="loader")
    port = start(w, app)
    d = get_json(port, "/info?via=loader", method="POST", body=b"loader body")
    assert_served_by_warren(w, d["pid"], app)
    assert (d["method"], d["url"], d["body"]) == ("POST", "/info?via=loader", "loader body"), d
    assert (d["listenCallbacks"], d["listeningEvents"], d["listenReturnsServer"]) == \
        (1, 1, True), d
    assert d["httpApi"] == HTTP_API, d
    body = os.urandom(3 * MiB)
    e = get_json(port, "/sha", method="POST", body=body)
    assert (e["len"], e["sha256"]) == (len(body), sha(body)), e


@pytest.mark.parametrize("form", sorted(ESM_APPS))
def test_form_b_loader_es_module(node, form):
    """An ES module (app.mjs) with `import http from 'http'` or
    `import { createServer } from 'node:http'`, under the loader."""
    w, root = node
    app = app_cfg(root, form + ".mjs", form="loader")
    port = start(w, app)
    d = get_json(port, "/esm?a=b", method="PUT", body=b"esm body \xe2\x82\xac")
    assert_served_by_warren(w, d["pid"], app)
    assert d == {"form": form, "pid": d["pid"], "method": "PUT", "url": "/esm?a=b",
                 "body": "esm body \u20ac", "listened": 1}, d


@needs_express
@pytest.mark.parametrize("form", ["direct", "loader"])
def test_form_c_express(node, form):
    """An Express app from Debian's node-express (NODE_PATH=/usr/share/nodejs):
    `require('unit-http').createServer(app).listen(80)`, or unchanged
    `app.listen(port)` under the loader. Routes, params and query,
    express.json() bodies, res.json, res.status, res.set/type/send, the
    404 of an unknown route."""
    w, root = node
    if form == "direct":
        app = app_cfg(root, "express_direct.js", env={"NODE_PATH": "/usr/share/nodejs"})
    else:
        app = app_cfg(root, "express_loader.js", form="loader",
                      env={"NODE_PATH": "/usr/share/nodejs"})
    port = start(w, app)
    r = hh.get(port, "/users/42?q=hello%20world")
    assert r.status == 200, r
    assert r.header("Content-Type") == "application/json; charset=utf-8", r
    d = json.loads(r.body)
    assert (d["id"], d["q"]) == ("42", "hello world"), d
    assert_served_by_warren(w, d["pid"], app)

    item = {"name": "widget", "n": 3, "tags": ["a", "\u00e9"]}
    r = hh.get(port, "/items", method="POST", body=json.dumps(item),
               headers={"Content-Type": "application/json"})
    assert r.status == 201, r
    assert json.loads(r.body) == {"created": item}, r

    r = hh.get(port, "/teapot")
    assert (r.status, r.body) == (418, b"short and stout"), r

    r = hh.get(port, "/ua", headers={"User-Agent": "express-test/2.0"})
    assert (r.status, r.body, r.header("X-Express")) == (200, b"express-test/2.0", "yes"), r
    assert r.header("Content-Type") == "text/plain; charset=utf-8", r

    r = hh.get(port, "/nope")
    assert r.status == 404, r
    assert b"Cannot GET /nope" in r.body, r
    # the same worker served all of it
    assert get_json(port, "/users/1")["pid"] == d["pid"]


# ------------------------------------------------------------------ 2. requests

def test_request_fields(node):
    """method, url (raw target and query), httpVersion, headers (lower-case
    names), rawHeaders (as sent: order and spelling), trailers {}, complete
    after 'end', a Readable; socket/connection addresses; the response's
    starting state."""
    w, root = node
    port = start(w, app_cfg(root))
    target = "/info/a%20b/c?x=1&y=%20z&x=2"
    body = b"name=value&other=1"
    sent = [("Host", "example.test:%d" % port), ("User-Agent", "node-test/1.0"),
            ("X-Mixed-Case", "Some Value"), ("accept", "*/*"),
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Content-Length", str(len(body)))]
    with hh.Conn(port) as c:
        client_port = c.s.getsockname()[1]
        r = c.request("POST", target, headers=sent, body=body, host=None)
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["method"], d["url"], d["httpVersion"], d["major"], d["minor"]) == \
        ("POST", target, "1.1", 1, 1), d
    assert d["headers"] == {k.lower(): v for k, v in sent}, d["headers"]
    assert d["rawHeaders"] == [x for kv in sent for x in kv], d["rawHeaders"]
    assert (d["trailers"], d["body"], d["completeAtEnd"], d["readable"]) == \
        ({}, body.decode(), True, True), d
    assert d["socket"] == {"remoteAddress": "127.0.0.1", "remotePort": client_port,
                           "remotePortType": "number", "localAddress": "127.0.0.1",
                           "localPort": port, "remoteFamily": "IPv4",
                           "encrypted": False}, d["socket"]
    assert (d["connectionIsSocket"], d["resReq"], d["resSocket"]) == (True, True, True), d
    assert (d["statusCode"], d["sendDate"], d["headersSent"]) == (200, True, False), d
    assert (d["resSetTimeout"], d["serverSetTimeout"], d["serverIsEventEmitter"]) == \
        (True, True, True), d
    assert d["address"] is None, d      # address() did not throw


def test_duplicate_request_headers_follow_node(node):
    """Duplicates as Node's http gives them: set-cookie an array, cookie
    joined with '; ', the single-valued ones (user-agent, authorization,
    referer, content-type, from ...) keep the first, others joined with
    ', ' (names compared case-insensitively); rawHeaders keeps every one."""
    w, root = node
    port = start(w, app_cfg(root))
    sent = [("Host", "localhost"),
            ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"),
            ("Cookie", "c=3"), ("Cookie", "d=4"),
            ("User-Agent", "first-agent"), ("User-Agent", "second-agent"),
            ("Authorization", "Basic Zmlyc3Q="), ("Authorization", "Basic c2Vjb25k"),
            ("Referer", "http://first.example/"), ("Referer", "http://second.example/"),
            ("Content-Type", "text/first"), ("Content-Type", "text/second"),
            ("From", "a@example.com"), ("From", "b@example.com"),
            ("X-Multi", "one"), ("X-Multi", "two"), ("x-multi", "three"),
            ("Accept", "text/html"), ("Accept", "application/json")]
    r = hh.get(port, "/info", headers=sent, host=None)
    assert r.status == 200, r
    d = json.loads(r.body)
    assert d["headers"] == {
        "host": "localhost",
        "set-cookie": ["a=1", "b=2"],
        "cookie": "c=3; d=4",
        "user-agent": "first-agent",
        "authorization": "Basic Zmlyc3Q=",
        "referer": "http://first.example/",
        "content-type": "text/first",
        "from": "a@example.com",
        "x-multi": "one, two, three",
        "accept": "text/html, application/json",
    }, d["headers"]
    assert d["rawHeaders"] == [x for kv in sent for x in kv], d["rawHeaders"]


def test_header_values_are_latin1_as_node(node):
    """Field values are bytes taken one for one (latin1), as Node's parser
    gives them: UTF-8 \xc3\xa9 is two characters, \xe9 one."""
    w, root = node
    port = start(w, app_cfg(root))
    with hh.Conn(port) as c:
        c.send(b"GET /info HTTP/1.1\r\nHost: x\r\nX-Utf8: \xc3\xa9\r\nX-Latin: \xe9\r\n\r\n")
        r = c.read_response()
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["headers"]["x-utf8"], d["headers"]["x-latin"]) == ("\u00c3\u00a9", "\u00e9"), d
    assert d["rawHeaders"] == ["Host", "x", "X-Utf8", "\u00c3\u00a9", "X-Latin", "\u00e9"], d


@pytest.mark.skipif(not wh.ipv6_loopback_ok(), reason="no IPv6 loopback")
def test_socket_addresses_over_ipv6(node):
    w, root = node
    port, port6 = wh.free_port(), wh.free_port(socket.AF_INET6, "::1")
    start(w, app_cfg(root), listeners={
        "127.0.0.1:%d" % port: {"pass": "applications/" + APP},
        "[::1]:%d" % port6: {"pass": "applications/" + APP}})
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(("::1", port6))
    with conn_on(s) as c:
        client_port = s.getsockname()[1]
        r = c.request("GET", "/info")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert d["socket"] == {"remoteAddress": "::1", "remotePort": client_port,
                           "remotePortType": "number", "localAddress": "::1",
                           "localPort": port6, "remoteFamily": "IPv6",
                           "encrypted": False}, d["socket"]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return th.PKI(str(tmp_path_factory.mktemp("warren-node-pki")))


def test_socket_encrypted_on_https_only(node, pki):
    w, root = node
    th.store(w, pki, "localhost")
    port, plain = wh.free_port(), wh.free_port()
    th.tls_setup(w, port, {"certificate": "localhost"}, plain_port=plain,
                 routes=[{"action": {"pass": "applications/" + APP}}],
                 extra={"applications": {APP: app_cfg(root)}})
    r, _ = th.tls_get(port, th.client_ctx(pki.cafile), "/info")
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["socket"]["encrypted"], d["socket"]["localPort"]) == (True, port), d
    d = get_json(plain, "/info")
    assert (d["socket"]["encrypted"], d["socket"]["localPort"]) == (False, plain), d


# ------------------------------------------------------------------ 3. bodies

@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_upload_20mb_hashed_by_async_iteration(node, framing):
    """A 20 MiB body read with `for await (const chunk of req)`: Buffers, in
    many pieces none of them large (it streams, never held whole), the
    sha256 of the body; a chunked one shows Transfer-Encoding and no
    Content-Length."""
    w, root = node
    port = start(w, app_cfg(root))
    body = os.urandom(20 * MiB)
    hdrs = {"Content-Type": "application/octet-stream"}
    if framing == "chunked":
        hdrs["Transfer-Encoding"] = "chunked"
        raw = chunked(body)
    else:
        raw = body
    with hh.Conn(port, timeout=60) as c:
        r = c.request("POST", "/sha", headers=hdrs, body=raw)
    assert r.status == 200, r
    d = json.loads(r.body)
    assert (d["len"], d["sha256"], d["allBuffers"], d["complete"]) == \
        (len(body), sha(body), True, True), d
    assert d["chunks"] > 1 and d["max"] <= 1 * MiB, d
    if framing == "chunked":
        assert (d["te"], d["cl"]) == ("chunked", None), d
    else:
        assert (d["te"], d["cl"]) == (None, str(len(body))), d


def test_set_encoding_utf8(node):
    """req.setEncoding('utf8'): every chunk a string, three-byte characters
    never split (300 000 bytes of U+20AC = 100 000 characters)."""
    w, root = node
    port = start(w, app_cfg(root))
    body = "\u20ac".encode() * 100000
    d = get_json(port, "/text", method="POST", body=body)
    assert d == {"chars": 100000, "allStrings": True, "allEuro": True}, d


def test_upload_20mb_echoed_by_pipe(node):
    """req.pipe(res) of a 20 MiB upload: the client sends and reads at once
    (the echo flows back while the upload goes on); byte-exact."""
    w, root = node
    port = start(w, app_cfg(root))
    body = os.urandom(20 * MiB)
    c = hh.Conn(port, timeout=60)
    errors = []

    def send():
        try:
            c.send(hh.build("POST", "/echo", headers={"Content-Type": "application/x-test"},
                            body=body))
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        r = c.read_response()
    finally:
        t.join(60)
        c.close()
    assert not errors, errors
    assert r.status == 200, r
    assert (len(r.body), sha(r.body)) == (len(body), sha(body))


def test_upload_not_read_is_not_taken_whole(node):
    """The app holds a 20 MiB POST without reading it: the worker takes no
    more than a window of it (req.readableLength stays small) and the
    client cannot send it all; once the app reads (after /resume), the whole
    body arrives, byte-exact."""
    w, root = node
    port = start(w, app_cfg(root))
    body = os.urandom(20 * MiB)
    c = hh.Conn(port, timeout=60)
    sent = threading.Event()
    errors = []

    def send():
        try:
            c.send(hh.build("POST", "/paused?tag=up",
                            headers={"Content-Type": "application/octet-stream"}, body=body))
            sent.set()
        except OSError as e:
            errors.append(e)
    t = threading.Thread(target=send, daemon=True)
    t.start()
    try:
        assert wh.wait_for(lambda: get_json(port, "/peek?tag=up")["held"], WAIT_S, 0.05), \
            "the app never got the request"
        # 20 MiB cannot fit in the socket buffers: it is taken only if read.
        assert not sent.wait(3.0), \
            "the whole upload was taken while the app read none of it"
        p = get_json(port, "/peek?tag=up")
        assert p["held"] and p["readableLength"] <= 1 * MiB, p
        assert get_json(port, "/resume?tag=up") == {"resumed": True}
        t.join(60)
        assert sent.is_set() and not errors, errors
        r = c.read_response()
    finally:
        c.close()
    assert r.status == 200, r
    assert json.loads(r.body) == {"len": len(body), "sha256": sha(body)}, r


def test_large_response_to_a_slow_client_write_false_then_drain(node):
    """16 MiB written by a loop that stops when write() returns false and
    goes on at 'drain'. The client reads nothing until the app saw write()
    return false (and has not finished: 16 MiB cannot be buffered on the
    way); then it reads it all, byte-exact; every false was followed by one
    'drain'."""
    w, root = node
    port = start(w, app_cfg(root))
    total = 16 * MiB
    with slow_conn(port) as c:
        c.send(hh.build("GET", "/big?tag=big&mb=16"))
        st = stats_when(port, "big", lambda x: x["falses"] >= 1)
        assert st["falses"] >= 1, ("write() never returned false while the client read "
                                   "nothing", st)
        assert not st["done"] and st["written"] < total, st
        r = c.read_response()
    assert r.status == 200, r
    assert r.header("Content-Length") == str(total), r
    assert len(r.body) == total and r.body == pattern(total), len(r.body)
    st = stats_when(port, "big", lambda x: x["done"])
    assert st["done"] and st["written"] == total, st
    assert st["drains"] == st["falses"] >= 1, st


def test_a_slow_client_holds_back_only_its_own_response(node):
    """Two 16 MiB answers from the one worker: one client reads nothing (its
    answer stalls, write() returned false), the other reads all of its own
    meanwhile; then the slow one reads its own. Both byte-exact."""
    w, root = node
    port = start(w, app_cfg(root))
    total = 16 * MiB
    with slow_conn(port) as slow:
        slow.send(hh.build("GET", "/big?tag=slow&mb=16"))
        st = stats_when(port, "slow", lambda x: x["falses"] >= 1)
        assert st["falses"] >= 1, st
        with hh.Conn(port, timeout=60) as fast:
            r = fast.request("GET", "/big?tag=fast&mb=16")
        assert r.status == 200 and r.body == pattern(total), (r.status, len(r.body))
        st = get_json(port, "/stats?tag=slow")
        assert not st["done"], st
        r = slow.read_response()
    assert r.status == 200 and r.body == pattern(total), (r.status, len(r.body))
    assert len(w.app_processes()[1]) == 1


def test_concurrent_uploads_echoed_by_one_worker(node):
    """Eight 4 MiB uploads at once, each echoed by req.pipe(res) while it is
    sent, all by the one worker: every echo byte-exact."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    bodies = [os.urandom(4 * MiB) for _ in range(8)]

    def echo(body):
        c = hh.Conn(port, timeout=60)
        t = threading.Thread(target=c.send, daemon=True,
                             args=(hh.build("POST", "/echo", body=body),))
        t.start()
        try:
            return c.read_response()
        finally:
            t.join(60)
            c.close()
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(bodies)) as ex:
        rs = list(ex.map(echo, bodies))
    for body, r in zip(bodies, rs):
        assert r.status == 200, r
        assert (len(r.body), sha(r.body)) == (len(body), sha(body))
    assert pid_of(port) == pid


# ------------------------------------------------------------------ 4. responses

def test_response_header_api(node):
    """setHeader (string, number, array), getHeader, hasHeader, removeHeader,
    appendHeader, getHeaderNames, getHeaders; writeHead(status, headers)
    returns res, its fields merge over setHeader's; headersSent. On the
    wire: the status with its standard reason, each array element a field."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/headers-api")
    assert (r.status, r.reason) == (201, "Created"), r
    d = json.loads(r.body)
    assert d["before"] == {"headersSent": False, "statusCode": 200}, d
    assert (d["getNum"], d["getArr"], d["hasGone"], d["hasGoneAfter"], d["getGone"]) == \
        (42, ["a", "b"], True, False, "undefined"), d
    assert d["getApp"] == ["one", "two", "three"], d
    assert sorted(d["names"]) == ["content-type", "x-app", "x-arr", "x-int", "x-num"], d
    assert d["headers"] == {"x-num": 42, "x-arr": ["a", "b"], "x-int": 7,
                            "content-type": "application/json",
                            "x-app": ["one", "two", "three"]}, d
    assert d["writeHeadReturnsRes"] is True, d
    assert d["after"] == {"headersSent": True, "statusCode": 201}, d
    assert fields(r, "X-Num") == ["43"], r.headers
    assert fields(r, "X-Int") == ["7"], r.headers
    assert fields(r, "X-Arr") == ["a", "b"], r.headers
    assert fields(r, "X-App") == ["one", "two", "three"], r.headers
    assert fields(r, "X-Head") == ["h"], r.headers
    assert fields(r, "X-Gone") == [], r.headers
    assert fields(r, "Content-Type") == ["application/json"], r.headers


def test_write_head_with_message_and_flat_array(node):
    """writeHead(status, message, [name, value, ...]) returns res; the
    array's duplicates are kept; statusMessage is the app's, the reason
    sent is the standard one (a documented difference)."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/writehead-array")
    assert (r.status, r.reason) == (202, "Accepted"), r
    assert json.loads(r.body) == {"statusCode": 202, "statusMessage": "Custom Reason",
                                  "returnsRes": True}, r
    assert fields(r, "X-Dup") == ["one", "two"], r.headers
    assert fields(r, "X-Flat") == ["flat"], r.headers


def test_write_head_flat_array_merges_over_set_header(node):
    """setHeader('X-Over', ...) then writeHead(200, ['X-Over', v, ...]): as
    with an object, writeHead's field replaces setHeader's of the same name
    (Node sends X-Over once, writeHead's value); the others stay."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/writehead-merge")
    assert (r.status, r.body) == (200, b"merged"), r
    assert fields(r, "X-Over") == ["from-writeHead"], r.headers
    assert fields(r, "X-Kept") == ["kept"], r.headers
    assert fields(r, "X-Flat") == ["flat"], r.headers


def test_response_header_errors(node):
    """The app catches Node's errors and answers with their codes: a bad
    name ERR_INVALID_HTTP_TOKEN (TypeError), CR/LF in a value
    ERR_INVALID_CHAR (TypeError), writeHead outside 100..999
    ERR_HTTP_INVALID_STATUS_CODE (RangeError), setHeader after writeHead
    ERR_HTTP_HEADERS_SENT (Error). None of those fields went out."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/errors")
    assert r.status == 200, r
    d = json.loads(r.body)
    token = {"code": "ERR_INVALID_HTTP_TOKEN", "name": "TypeError"}
    char = {"code": "ERR_INVALID_CHAR", "name": "TypeError"}
    status = {"code": "ERR_HTTP_INVALID_STATUS_CODE", "name": "RangeError"}
    assert d == {"badName": token, "colonName": token, "crlf": char, "lf": char,
                 "status1000": status, "status99": status, "headersSentBefore": False,
                 "lateSet": {"code": "ERR_HTTP_HEADERS_SENT", "name": "Error"}}, d
    for name in ("X-Ok", "X-Injected", "X-Late", "Bad Name", "X:Colon"):
        assert fields(r, name) == [], (name, r.headers)


def test_flush_headers(node):
    """flushHeaders() sends the head at once: the client has it (status and
    the app's field) while the app still holds the body, which comes after
    /release."""
    w, root = node
    port = start(w, app_cfg(root))
    with hh.Conn(port, timeout=10) as c:
        c.send(hh.build("GET", "/flush?tag=f"))
        head = fill_head(c)
        assert head.startswith(b"HTTP/1.1 200 "), head
        assert b"\r\nx-flushed: yes" in head.lower(), head
        assert get_json(port, "/release?tag=f") == {"released": True, "headersSent": True}
        r = c.read_response()
    assert (r.status, r.body) == (200, b"after release"), r


def test_finish_then_close_and_callbacks(node):
    """write(chunk, 'hex', cb) and end(chunk, 'base64', cb): the bytes
    decoded, both callbacks called, 'finish' then 'close' once each;
    writableEnded, writableFinished, finished along the way; end returns
    res."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/events?tag=ev")
    assert (r.status, r.body) == (200, b"hello world"), r
    st = stats_when(port, "ev", lambda x: "close" in x["events"])
    ev = st["events"]
    assert sorted(ev) == ["close", "end-cb", "finish", "write-cb"], st
    assert ev.index("finish") < ev.index("close"), st
    assert st["beforeEnd"] == {"writableEnded": False, "writableFinished": False,
                               "finished": False}, st
    assert st["afterEnd"] == {"writableEnded": True, "finished": True}, st
    assert (st["writableFinishedAtFinish"], st["writeReturned"], st["endReturnsRes"]) == \
        (True, True, True), st


def test_status_code_and_message(node):
    """res.statusCode = 404 and a custom statusMessage: 404 goes out with
    the standard reason."""
    w, root = node
    port = start(w, app_cfg(root))
    r = hh.get(port, "/status-message")
    assert (r.status, r.reason, r.body) == (404, "Not Found", b"custom status"), r


def test_head_answer_has_no_body(node):
    """The app answers HEAD with res.end(body): no body bytes go out (the
    next response on the connection is read right after the head); GET gets
    the body."""
    w, root = node
    port = start(w, app_cfg(root))
    with hh.Conn(port) as c:
        r = c.request("HEAD", "/head")
        assert (r.status, r.header("X-Method")) == (200, "HEAD"), r
        assert r.header("Content-Type") == "text/plain", r
        r = c.request("GET", "/head")
        assert (r.status, r.header("X-Method")) == (200, "GET"), r
        assert r.body == b"a body that a HEAD answer does not carry", r
        r = c.request("HEAD", "/head")
        assert r.status == 200, r
        assert c.still_open(0.3), "bytes or EOF after the head of a HEAD answer"


def test_framing_fields_are_the_routers(node):
    """Transfer-Encoding and Connection set by the app do not frame the
    answer twice: the body arrives as written, one Transfer-Encoding at
    most; an app's Content-Length is sent with the body it covers."""
    w, root = node
    port = start(w, app_cfg(root))
    with hh.Conn(port) as c:
        r = c.request("GET", "/framing")
        assert (r.status, r.body) == (200, b"framed by the router"), r
        assert len(fields(r, "Transfer-Encoding")) <= 1, r.headers
        if not c.eof and not c.buf:
            try:
                r2 = c.request("GET", "/content-length")
            except (hh.HTTPError, OSError):
                r2 = None          # the router may close, as the app asked
            if r2 is not None:
                assert (r2.status, r2.body) == (200, b"12345"), r2
    r = hh.get(port, "/content-length")
    assert (r.status, r.body, fields(r, "Content-Length")) == (200, b"12345", ["5"]), r


# ------------------------------------------------------------------ 5. concurrency

def test_64_requests_held_at_once_by_one_worker(node):
    """"processes": 1 and an app that answers none of 64 requests until all
    64 arrived: the one worker gets them all at once (no request waits for
    another to finish), and answers them."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    n = 64

    def one(i):
        with hh.Conn(port, timeout=30) as c:
            return c.request("GET", "/barrier?tag=b&n=%d&i=%d" % (n, i))
    with concurrent.futures.ThreadPoolExecutor(max_workers=n) as ex:
        rs = list(ex.map(one, range(n)))
    assert all(r.status == 200 for r in rs), [r for r in rs if r.status != 200][:3]
    assert {json.loads(r.body)["pid"] for r in rs} == {pid}, rs[:3]
    assert w.app_processes()[1] == {pid}


# ------------------------------------------------------------------ 6. clients that leave

@pytest.mark.parametrize("case", ["unread-get", "mid-body", "mid-response"])
def test_client_abort_emits_aborted_and_close(node, case):
    """A client leaves while the app holds its request (a GET whose request
    the app did not read, a POST whose body it was reading, cut short, or a
    16 MiB answer the app is writing, waiting for 'drain', of which the
    client read only the head): req emits 'aborted' and 'close', res 'close'
    and no 'finish'; the worker serves on (same pid) and reports the
    counts."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    tag = "gone-" + case
    c = hh.Conn(port, timeout=10)
    try:
        if case == "unread-get":
            c.send(hh.build("GET", "/hang?tag=" + tag))
            st = stats_when(port, tag, lambda x: x["started"])
        elif case == "mid-response":
            c.send(hh.build("GET", "/big?mb=16&tag=" + tag))
            st = stats_when(port, tag, lambda x: x["falses"] >= 1)
            assert st["falses"] >= 1, st
            assert fill_head(c).startswith(b"HTTP/1.1 200 ")
        else:
            c.send(hh.build("POST", "/hang?read=1&tag=" + tag,
                            headers={"Content-Length": str(MiB)}) + b"x" * 100000)
            st = stats_when(port, tag, lambda x: x["received"] > 0)
            assert st["received"] > 0, st
        assert st["started"], st
    finally:
        c.close()
    st = stats_when(port, tag, lambda x: x["resClose"] >= 1 and x["reqClose"] >= 1)
    assert (st["aborted"], st["reqClose"], st["resClose"], st["finish"]) == (1, 1, 1, 0), st
    if case == "mid-response":
        assert not st["done"] and st["written"] < 16 * MiB, st
    assert pid_of(port) == pid
    assert w.app_processes()[1] == {pid}


# ------------------------------------------------------------------ 7. worker deaths

@pytest.mark.parametrize("route, marker", [("/throw", "node-test-uncaught-4711"),
                                           ("/throw-later", "node-test-uncaught-4712")])
def test_uncaught_exception_kills_the_worker_and_a_new_one_serves(node, route, marker):
    """An exception thrown by the request handler (or later, from a
    setImmediate callback) is uncaught: the worker dies as Node's would
    (its stack on stderr, in the log), the request gets 502 or 503, a new
    worker serves the next requests."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    with hh.Conn(port, timeout=WAIT_S) as c:
        r = c.request("GET", route)
    assert r.status in (502, 503), r
    new = new_pid(port, pid)
    assert new, "no new worker"
    assert wh.wait_for(lambda: not wh.proc_alive(pid), WAIT_S), "the worker lives on"
    assert w.log_has(marker), w.log()[-3000:]
    assert w.app_processes()[1] == {new}
    d = get_json(port, "/info", method="POST", body=b"after the crash")
    assert (d["pid"], d["body"]) == (new, "after the crash"), d


@pytest.mark.parametrize("how", ["restart", "reconfigure"])
def test_new_generation_closes_the_old_server_and_the_worker_exits_0(node, how):
    """GET /control/applications/NAME/restart (or a changed application):
    a new worker (new pid) serves; the old one's server emitted 'close' and
    it exited 0 (its process.on('exit') saw code 0; a retired generation's
    worker exits are not logged one by one)."""
    w, root = node
    port = start(w, app_cfg(root))
    old = pid_of(port)
    if how == "restart":
        s, j = w.get("/control/applications/%s/restart" % APP)
        assert (s, j) == (200, {"success": "Ok"}), (s, j)
    else:
        s, j = w.put("/config/applications/%s/environment/ROUND" % APP, "2")
        assert (s, j) == (200, wh.SUCCESS), (s, j)
    new = new_pid(port, old)
    assert new, "the old worker still serves"
    assert wh.wait_for(lambda: old in closed_pids(root), WAIT_S), \
        ("no 'close' event in the old worker", closed_pids(root), w.log()[-2000:])
    assert wh.wait_for(lambda: not wh.proc_alive(old), WAIT_S), "the old worker lives on"
    assert exit_codes(root).get(old) == 0, exit_codes(root)
    assert new not in closed_pids(root)
    assert get_json(port, "/info")["pid"] == new


def test_restart_lets_a_busy_worker_finish_its_request_first(node):
    """A restart while the worker holds a request: the new worker serves new
    requests at once; the old one keeps its server open (no 'close') until
    that request is answered (by it), then it closes and exits 0."""
    w, root = node
    port = start(w, app_cfg(root))
    old = pid_of(port)
    c = hh.Conn(port, timeout=WAIT_S)
    try:
        c.send(hh.build("GET", "/wait-file?name=go"))
        assert wh.wait_for(lambda: out_lines(root, "started-go") == [str(old)], WAIT_S), \
            out_lines(root, "started-go")
        s, j = w.get("/control/applications/%s/restart" % APP)
        assert (s, j) == (200, {"success": "Ok"}), (s, j)
        new = new_pid(port, old)
        assert new, "the old worker still serves"
        assert wh.proc_alive(old), "the busy worker was not left to finish"
        assert old not in closed_pids(root), "'close' while a request was in flight"
        with open(os.path.join(root, "out", "go"), "w"):
            pass
        r = c.read_response()
    finally:
        c.close()
    assert (r.status, json.loads(r.body)) == (200, {"pid": old}), r
    assert wh.wait_for(lambda: old in closed_pids(root), WAIT_S), closed_pids(root)
    assert wh.wait_for(lambda: not wh.proc_alive(old), WAIT_S), "the old worker lives on"
    assert exit_codes(root).get(old) == 0, exit_codes(root)
    assert pid_of(port) == new


def test_graceful_stop_closes_the_server_and_the_worker_exits_0(node):
    """warrend stopped gracefully (SIGQUIT): the draining router closes the
    worker's channel, its server emits 'close' and it exits 0 (no process is
    left behind: w.stop checks it)."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    w.stop(signal.SIGQUIT)
    assert pid in closed_pids(root), (closed_pids(root), w.log()[-2000:])
    assert exit_codes(root).get(pid) == 0, exit_codes(root)


def test_fast_stop_closes_the_server_too(node):
    """warrend stopped fast (SIGTERM) signals the workers: unit-http ends
    the server as when the channel closes ('close', exit 0), since the app
    has no SIGTERM handler of its own."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    w.stop(signal.SIGTERM)
    assert wh.wait_for(lambda: pid in closed_pids(root), WAIT_S), closed_pids(root)
    assert wh.wait_for(lambda: exit_codes(root).get(pid) == 0, WAIT_S), exit_codes(root)


def test_server_close_by_the_app(node):
    """server.close(cb) called by the app after an answer: 'close' is
    emitted, cb runs, that worker goes and a new one serves."""
    w, root = node
    port = start(w, app_cfg(root))
    pid = pid_of(port)
    r = hh.get(port, "/selfclose")
    assert (r.status, r.body) == (200, b"closing"), r
    assert wh.wait_for(lambda: str(pid) in out_lines(root, "closecb"), WAIT_S), \
        ("close callback not called", out_lines(root, "closecb"))
    assert pid in closed_pids(root), closed_pids(root)
    assert wh.wait_for(lambda: not wh.proc_alive(pid), WAIT_S), "the worker lives on"
    assert wh.wait_for(lambda: any("(pid %d)" % pid in x and "exited" in x
                                   for x in w.log().splitlines()), WAIT_S), w.log()[-2000:]
    assert exit_codes(root).get(pid) == 0, exit_codes(root)
    new = new_pid(port, pid)
    assert new and new != pid

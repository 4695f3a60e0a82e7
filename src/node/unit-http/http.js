'use strict';
/*
 * unit-http for Warren: the `http` server API of Node.js, served from
 * Warren's worker channel instead of a listening socket, so an app written
 * for NGINX Unit (`require('unit-http')`, or its loader) runs unchanged.
 * warren.node (addon.c) is the channel; this file gives it Node's shapes:
 * Server, IncomingMessage (a Readable) and ServerResponse (a Stream with
 * OutgoingMessage's API). Everything else is Node's own `http`.
 *
 * One channel per process: the first server that listens takes it and
 * serves up to warren.MAX_STREAMS requests at once. Nothing here blocks:
 * a read with no body bytes yet, or a write beyond the router's credit,
 * waits for the channel to move (Channel.wait), like a socket would.
 */
const http = require('http');
const EventEmitter = require('events');
const { Duplex, Readable, Stream } = require('stream');
const warren = require('./warren.node');

const HIGH_WATER_MARK = 16 * 1024;     /* Node's default for a response */

/* Request fields Node keeps once (the first of them): others are joined. */
const SINGLE_FIELDS = new Set([
    'age', 'authorization', 'content-length', 'content-type', 'etag', 'expires',
    'from', 'host', 'if-modified-since', 'if-unmodified-since', 'last-modified',
    'location', 'max-forwards', 'proxy-authorization', 'referer', 'retry-after',
    'server', 'user-agent',
]);

/* Statuses that never carry a body (as Node's ServerResponse). */
const NO_BODY_STATUS = new Set([204, 304]);

/* Fields of an upgrade answer the router writes itself. */
const FRAMING_FIELDS = new Set(['connection', 'content-length', 'transfer-encoding', 'keep-alive']);
const HEAD_END = Buffer.from('\r\n\r\n');
const HEAD_MAX = 64 * 1024;        /* an upgrade answer's head, as the channel's */

function codedError(Type, code, message) {
    const err = new Type(message);
    err.code = code;
    return err;
}

function headersSentError(what) {
    return codedError(Error, 'ERR_HTTP_HEADERS_SENT',
                      `Cannot ${what} headers after they are sent to the client`);
}

/* ---------------------------------------------------------------- channel */

/* The worker channel and the exchanges (request + response) on it. */
class Channel {
    constructor(server) {
        this.server = server;
        this.active = new Set();        /* exchanges being served */
        this.waiting = new Set();       /* those waiting for the channel */
        this.kicked = false;
        this.open = false;
    }

    connect() {
        warren.connect(warren.MAX_STREAMS, () => this.readable());
        this.open = true;
        /* warrend's fast stop signals workers: end as when the channel
         * closes ('close', exit 0), unless the app handles SIGTERM. */
        process.on('SIGTERM', () => {
            if (process.listenerCount('SIGTERM') === 1)
                this.end(0);
        });
    }

    readable() {
        let open;

        try {
            open = warren.poll();
        } catch (err) {
            process.stderr.write(`unit-http: ${err.message}\n`);
            this.end(1);
            return;
        }
        if (!open) {
            this.end(0);
            return;
        }
        this.dispatch();
    }

    /* Look at the channel again soon, without input (finish() may have
     * taken messages off it). */
    kick() {
        if (this.kicked)
            return;
        this.kicked = true;
        process.nextTick(() => {
            this.kicked = false;
            this.dispatch();
        });
    }

    dispatch() {
        let head;

        if (!this.open)
            return;
        while ((head = warren.accept()) !== null) {
            const ex = new Exchange(this, head);

            this.active.add(ex);
            ex.start();
        }
        for (const ex of this.active) {
            if (ex.handle !== null && (warren.events(ex.handle) & warren.ABORTED))
                ex.gone();
        }
        if (this.waiting.size > 0) {
            const waiting = this.waiting;

            this.waiting = new Set();
            for (const ex of waiting)
                ex.wake();
        }
    }

    wait(ex) {
        this.waiting.add(ex);
    }

    /* Warren closed the channel (a restart, a new configuration, a stop):
     * what was being served cannot be answered; the worker ends. */
    end(status) {
        if (!this.open)
            return;
        this.open = false;
        for (const ex of this.active)
            ex.gone();
        warren.close();
        this.server.listening = false;
        this.server.emit('close');
        setImmediate(() => process.exit(status));
    }

    /* server.close(): no new requests; the channel closes once the
     * requests in progress are answered. */
    drain() {
        if (this.open && this.active.size === 0)
            this.end(0);
    }
}

/* One request and its response. */
class Exchange {
    constructor(channel, head) {
        this.channel = channel;
        this.handle = head[0];
        /* An upgrade goes to 'upgrade' listeners when there are some (as
         * in Node; else it is an ordinary request): they get the tunnel
         * as a socket, which reads the client's bytes. */
        this.tunnel = head[11] && channel.server.listenerCount('upgrade') > 0;
        this.socket = this.tunnel ? new UpgradeSocket(this, head) : new Socket(this, head);
        this.req = new IncomingMessage(this, head);
        this.res = new ServerResponse(this, this.req);
        this.reader = this.tunnel ? this.socket : this.req;
        this.wantRead = false;
    }

    start() {
        const server = this.channel.server;

        adoptFrameworks(server);
        try {
            if (this.tunnel) {
                this.req.push(null);
                server.emit('upgrade', this.req, this.socket, Buffer.alloc(0));
            } else {
                server.emit('request', this.req, this.res);
            }
        } catch (err) {
            /* Node's http server lets it reach the process, as here, but
             * the other requests of this turn are dispatched first. */
            process.nextTick(() => { throw err; });
        }
    }

    /* The channel moved: go on with what waited for it. */
    wake() {
        if (this.handle === null)
            return;
        if (this.wantRead) {
            this.wantRead = false;
            pull(this, this.reader);
        }
        this.res._flush();
    }

    /* The response went out whole: the request is over. */
    complete() {
        const handle = this.handle;

        this.handle = null;
        this.channel.active.delete(this);
        if (warren.finish(handle))
            this.channel.kick();
        this.req._over();
        this.res._finished();
        if (this.tunnel)
            this.socket.destroy();
        if (this.channel.server._closing)
            this.channel.drain();
    }

    /* The client went away, or the channel closed, or the app destroyed
     * the request: nothing more goes out. */
    gone(err) {
        if (this.handle === null)
            return;
        warren.abort(this.handle);
        this.handle = null;
        this.channel.active.delete(this);
        this.req._aborted(err);
        this.res._aborted();
        if (this.tunnel)
            this.socket.destroy();
        else
            this.socket._closed();
        if (this.channel.server._closing)
            this.channel.drain();
    }
}

/*
 * Express gives each request its own prototypes (app.request, app.response),
 * made from http.IncomingMessage and http.ServerResponse as it saw them when
 * it was loaded: Node's, unless it was loaded through the loader (or after
 * the app set http.IncomingMessage/ServerResponse to ours, as Unit's docs
 * tell). Such prototypes are moved onto ours once, before the first
 * request reaches the app, so `require('unit-http').createServer(app)`
 * works whatever was loaded first.
 */
const adopted = new WeakSet();

function adoptFrameworks(server) {
    for (const fn of server.listeners('request')) {
        if (adopted.has(fn))
            continue;
        adopted.add(fn);
        reparent(fn.request, http.IncomingMessage.prototype, IncomingMessage.prototype);
        reparent(fn.response, http.ServerResponse.prototype, ServerResponse.prototype);
    }
}

/* The object of proto's chain that sits on Node's class goes onto ours. */
function reparent(proto, node, ours) {
    for (let p = proto; p && typeof p === 'object'; p = Object.getPrototypeOf(p)) {
        const up = Object.getPrototypeOf(p);

        if (up === ours)
            return;
        if (up === node) {
            Object.setPrototypeOf(p, ours);
            return;
        }
    }
}

/* A socket's addresses, from the request head (accept()'s array). */
function addresses(socket, head) {
    socket.remoteAddress = head[4];
    socket.remotePort = Number(head[5]);
    socket.localAddress = head[6];
    socket.localPort = Number(head[7]);
    socket.remoteFamily = head[4].includes(':') ? 'IPv6' : 'IPv4';
    if (head[8] === 'https')
        socket.encrypted = true;
}

function socketAddress(socket) {
    return { address: socket.localAddress, family: socket.remoteFamily, port: socket.localPort };
}

/* What Node apps read of req.socket: the addresses, and no-op controls. */
class Socket extends EventEmitter {
    constructor(ex, head) {
        super();
        this._ex = ex;
        addresses(this, head);
        this.readable = true;
        this.writable = true;
        this.destroyed = false;
    }

    address() {
        return socketAddress(this);
    }

    destroy(err) {
        this.destroyed = true;
        this._ex.gone(err);
        return this;
    }

    /* The client's connection is gone ('close', as a socket says it). */
    _closed() {
        this.destroyed = true;
        this.readable = this.writable = false;
        process.nextTick(() => this.emit('close', true));
    }

    end() { return this; }
    setTimeout() { return this; }
    setNoDelay() { return this; }
    setKeepAlive() { return this; }
    ref() { return this; }
    unref() { return this; }
}

/*
 * The socket of an 'upgrade' (WebSocket libraries such as ws): what the
 * app writes first is its answer's head, as raw HTTP ("HTTP/1.1 101
 * ...\r\n\r\n"), which goes to the router as a response head; every
 * byte after it, and every byte read, is the tunnel's. A head other than
 * 101 makes an ordinary answer, its body what follows until end().
 */
class UpgradeSocket extends Duplex {
    constructor(ex, head) {
        super({ allowHalfOpen: false });
        this._ex = ex;
        this._head = Buffer.alloc(0);       /* the answer's head until it is whole */
        this._headDone = false;
        addresses(this, head);
    }

    address() {
        return socketAddress(this);
    }

    _read() {
        if (this._headDone)
            pull(this._ex, this);
    }

    _write(chunk, encoding, cb) {
        const res = this._ex.res;

        if (this._headDone) {
            res.write(chunk, cb);
            return;
        }
        this._head = Buffer.concat([this._head, chunk]);
        const end = this._head.indexOf(HEAD_END);

        if (end < 0) {
            if (this._head.length > HEAD_MAX)
                cb(codedError(Error, 'ERR_HTTP_HEADERS_TOO_LARGE', 'the upgrade answer\'s head is too large'));
            else
                cb();
            return;
        }
        const rest = this._head.subarray(end + HEAD_END.length);

        try {
            answerHead(res, this._head.subarray(0, end).toString('latin1'));
        } catch (err) {
            cb(err);
            return;
        }
        this._head = null;
        this._headDone = true;
        if (rest.length > 0)
            res.write(rest, cb);
        else {
            res.flushHeaders();
            cb();
        }
        if (this.readableFlowing !== false || this.listenerCount('readable') > 0)
            pull(this._ex, this);
    }

    /* Corked writes (a frame's head and payload) leave as one. */
    _writev(chunks, cb) {
        if (!this._headDone) {
            this._write(Buffer.concat(chunks.map((c) => c.chunk)), null, cb);
            return;
        }
        this._ex.res.write(Buffer.concat(chunks.map((c) => c.chunk)), cb);
    }

    _final(cb) {
        if (!this._headDone) {
            cb(codedError(Error, 'ERR_HTTP_HEADERS_SENT', 'the upgrade answer ended inside its head'));
            this._ex.gone();
            return;
        }
        this._ex.res.end(cb);
    }

    _destroy(err, cb) {
        this._ex.gone();
        cb(err);
    }

    setTimeout(msecs, cb) {
        if (cb)
            this.on('timeout', cb);
        return this;
    }

    setNoDelay() { return this; }
    setKeepAlive() { return this; }
    ref() { return this; }
    unref() { return this; }
}

/* "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket..." onto res. */
function answerHead(res, text) {
    const lines = text.split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);

    if (m === null)
        throw codedError(Error, 'ERR_INVALID_HTTP_RESPONSE', `not an HTTP status line: ${lines[0]}`);
    const fields = [];

    for (const line of lines.slice(1)) {
        const colon = line.indexOf(':');

        if (colon <= 0)
            throw codedError(Error, 'ERR_INVALID_HTTP_RESPONSE', `not a header field: ${line}`);
        const name = line.slice(0, colon).trim();

        if (!FRAMING_FIELDS.has(name.toLowerCase()))
            fields.push(name, line.slice(colon + 1).trim());
    }
    res.writeHead(Number(m[1]), m[2], fields);
}

/* ---------------------------------------------------------------- request */

class IncomingMessage extends Readable {
    constructor(ex, head) {
        super();
        this._ex = ex;
        this.socket = this.connection = ex.socket;
        this.method = head[1];
        this.url = head[2];
        this.httpVersion = head[3].replace(/^HTTP\//, '');
        this.httpVersionMajor = Number(this.httpVersion.split('.')[0]) || 1;
        this.httpVersionMinor = Number(this.httpVersion.split('.')[1]) || 0;
        this.rawHeaders = head[10];
        this.headers = joinFields(this.rawHeaders);
        this.trailers = {};
        this.rawTrailers = [];
        this.complete = false;
        this.aborted = false;
        this.upgrade = head[11];
        /* settings.http.websocket for an upgrade (websocket.js) */
        this._websocket = head[12] || null;
        this.statusCode = null;
        this.statusMessage = null;
    }

    get headersDistinct() {
        const out = Object.create(null);

        for (let i = 0; i + 1 < this.rawHeaders.length; i += 2) {
            const name = this.rawHeaders[i].toLowerCase();

            (out[name] = out[name] || []).push(this.rawHeaders[i + 1]);
        }
        return out;
    }

    get trailersDistinct() {
        return Object.create(null);
    }

    setTimeout(msecs, cb) {
        if (cb)
            this.on('timeout', cb);
        return this;
    }

    _read() {
        pull(this._ex, this);
    }

    /* The response is complete. A body not read to its end is dropped, as
     * Node's server does, so 'end' and 'close' still come. */
    _over() {
        if (!this._readableState.ended)
            this.push(null);
        if (!this.readableEnded)
            this.resume();
    }

    _aborted(err) {
        if (this.complete && this.readableEnded)
            return;
        this.aborted = true;
        this.emit('aborted');
        this.destroy(err || null);
    }

    _destroy(err, cb) {
        const ex = this._ex;

        if (ex.handle !== null && !this.readableEnded)
            ex.gone();
        /* Node only reports the error to a listener that asked for it. */
        cb(this.listenerCount('error') > 0 ? err : null);
    }
}

/* Pushes what arrived of the body (or of a tunnel) into stream, while
 * its reader wants more. */
function pull(ex, stream) {
    while (ex.handle !== null) {
        let data;

        try {
            data = warren.read(ex.handle);
        } catch (err) {
            ex.gone();
            return;
        }
        if (data === null) {
            ex.wantRead = true;
            ex.channel.wait(ex);
            return;
        }
        if (data.length === 0) {
            stream.complete = true;
            stream.push(null);
            return;
        }
        if (!stream.push(data))
            return;
    }
}

/* Node's rules for repeated request fields. */
function joinFields(raw) {
    const out = {};

    for (let i = 0; i + 1 < raw.length; i += 2) {
        const name = raw[i].toLowerCase();
        const value = raw[i + 1];

        if (!(name in out)) {
            out[name] = name === 'set-cookie' ? [value] : value;
        } else if (name === 'set-cookie') {
            out[name].push(value);
        } else if (name === 'cookie') {
            out[name] += '; ' + value;
        } else if (!SINGLE_FIELDS.has(name)) {
            out[name] += ', ' + value;
        }
    }
    return out;
}

/* --------------------------------------------------------------- response */

class ServerResponse extends Stream {
    constructor(ex, req) {
        super();
        this._ex = ex;
        this.req = req;
        this.socket = this.connection = ex.socket;
        this.statusCode = 200;
        this.statusMessage = undefined;
        this.sendDate = true;
        this.chunkedEncoding = false;
        this.shouldKeepAlive = true;
        this.useChunkedEncodingByDefault = true;
        this.strictContentLength = false;
        this.writable = true;
        this.destroyed = false;
        this.finished = false;              /* end() was called (Node's name) */
        this.writableFinished = false;
        this.writableHighWaterMark = HIGH_WATER_MARK;
        this._fields = new Map();           /* lower-case name -> [name, value] */
        this._frozen = false;               /* writeHead or a write: no more fields */
        this._started = false;              /* the head went to the addon */
        this._queue = [];                   /* { buf, off, last, cb } */
        this._queued = 0;
        this._needDrain = false;
        this._corked = 0;
        this._noBody = req.method === 'HEAD';
    }

    get headersSent() { return this._frozen; }
    get writableEnded() { return this.finished; }
    get writableLength() { return this._queued; }
    get writableNeedDrain() { return this._needDrain; }
    get writableCorked() { return this._corked; }

    /* ---- fields */

    setHeader(name, value) {
        if (this._frozen)
            throw headersSentError('set');
        http.validateHeaderName(name);
        http.validateHeaderValue(name, value);
        this._fields.set(name.toLowerCase(), [name, value]);
        return this;
    }

    appendHeader(name, value) {
        if (this._frozen)
            throw headersSentError('append');
        http.validateHeaderName(name);
        http.validateHeaderValue(name, value);
        const key = name.toLowerCase();
        const had = this._fields.get(key);

        if (had === undefined) {
            this._fields.set(key, [name, value]);
        } else {
            const values = [].concat(had[1], value);

            this._fields.set(key, [had[0], values]);
        }
        return this;
    }

    getHeader(name) {
        const f = this._fields.get(String(name).toLowerCase());

        return f === undefined ? undefined : f[1];
    }

    getHeaders() {
        const out = Object.create(null);

        for (const [key, f] of this._fields)
            out[key] = f[1];
        return out;
    }

    getHeaderNames() {
        return [...this._fields.keys()];
    }

    getRawHeaderNames() {
        return [...this._fields.values()].map((f) => f[0]);
    }

    hasHeader(name) {
        return this._fields.has(String(name).toLowerCase());
    }

    removeHeader(name) {
        if (this._frozen)
            throw headersSentError('remove');
        this._fields.delete(String(name).toLowerCase());
    }

    writeHead(statusCode, reason, fields) {
        if (this._frozen)
            throw headersSentError('write');
        const code = statusCode | 0;

        if (code < 100 || code > 999)
            throw codedError(RangeError, 'ERR_HTTP_INVALID_STATUS_CODE',
                             `Invalid status code: ${statusCode}`);
        if (typeof reason === 'string')
            this.statusMessage = reason;
        else
            fields = reason;
        this.statusCode = code;
        if (Array.isArray(fields)) {
            if (fields.length % 2 !== 0)
                throw codedError(TypeError, 'ERR_INVALID_ARG_VALUE',
                                 'The argument \'headers\' is invalid');
            /* As Node: a name's first pair replaces what setHeader gave it,
             * its repeats add to it. */
            const seen = new Set();

            for (let i = 0; i < fields.length; i += 2) {
                const key = String(fields[i]).toLowerCase();

                if (seen.has(key)) {
                    this.appendHeader(fields[i], fields[i + 1]);
                } else {
                    seen.add(key);
                    this.setHeader(fields[i], fields[i + 1]);
                }
            }
        } else if (fields) {
            for (const name of Object.keys(fields)) {
                if (fields[name] !== undefined)
                    this.setHeader(name, fields[name]);
            }
        }
        this._frozen = true;
        return this;
    }

    flushHeaders() {
        this._freeze();
        if (this._ex.handle !== null && this._head())
            warrenCall(this._ex, () => warren.head(this._ex.handle));
    }

    /* The head is decided by the first write (as writeHead would). */
    _freeze() {
        if (!this._frozen) {
            this.writeHead(this.statusCode);
        }
        if (NO_BODY_STATUS.has(this.statusCode))
            this._noBody = true;
    }

    /* Hands the head to the addon once; false when the exchange is over. */
    _head() {
        if (this._started)
            return true;
        const list = [];

        for (const [name, value] of this._fields.values()) {
            for (const v of Array.isArray(value) ? value : [value])
                list.push(name, String(v));
        }
        this._started = true;
        return warrenCall(this._ex, () => warren.start(this._ex.handle, this.statusCode, list));
    }

    /* ---- body */

    write(chunk, encoding, cb) {
        if (typeof encoding === 'function') {
            cb = encoding;
            encoding = undefined;
        }
        if (this.finished) {
            const err = codedError(Error, 'ERR_STREAM_WRITE_AFTER_END', 'write after end');

            process.nextTick(() => {
                if (cb)
                    cb(err);
                this.emit('error', err);
            });
            return false;
        }
        if (this.destroyed) {
            const err = codedError(Error, 'ERR_STREAM_DESTROYED',
                                   'Cannot call write after a stream was destroyed');

            if (cb)
                process.nextTick(cb, err);
            return false;
        }
        const buf = toBuffer(chunk, encoding);

        this._freeze();
        if (this._noBody || buf.length === 0) {
            if (cb)
                process.nextTick(cb);
            return true;
        }
        this._queue.push({ buf, off: 0, last: false, cb });
        this._queued += buf.length;
        this._flush();
        if (this._queued > 0)
            this._needDrain = true;
        return this._queued === 0;
    }

    end(chunk, encoding, cb) {
        if (typeof chunk === 'function') {
            cb = chunk;
            chunk = undefined;
        } else if (typeof encoding === 'function') {
            cb = encoding;
            encoding = undefined;
        }
        if (this.finished) {
            if (cb)
                process.nextTick(cb);
            return this;
        }
        let buf = chunk === undefined || chunk === null ? Buffer.alloc(0)
                                                         : toBuffer(chunk, encoding);

        /* The whole body in end(), no head yet: Node gives its length. */
        if (!this._frozen && !this._fields.has('content-length')
            && !this._fields.has('transfer-encoding') && !NO_BODY_STATUS.has(this.statusCode))
            this._fields.set('content-length', ['Content-Length', String(buf.length)]);
        this._freeze();
        if (this._noBody)
            buf = Buffer.alloc(0);
        this.finished = true;
        if (cb)
            this.once('finish', cb);
        if (this.destroyed)
            return this;
        this._queue.push({ buf, off: 0, last: true, cb: null });
        this._queued += buf.length;
        this._corked = 0;
        this._flush();
        return this;
    }

    cork() {
        this._corked++;
    }

    uncork() {
        if (this._corked > 0 && --this._corked === 0)
            this._flush();
    }

    /* Sends what the router's credit allows; the rest waits for it. */
    _flush() {
        const ex = this._ex;

        if (ex.handle === null || this._queue.length === 0 || this._corked > 0)
            return;
        if (!this._head())
            return;
        while (this._queue.length > 0) {
            const item = this._queue[0];
            let off;

            try {
                off = warren.write(ex.handle, item.buf, item.off, item.last);
            } catch (err) {
                ex.gone();
                return;
            }
            this._queued -= off - item.off;
            item.off = off;
            if (off < item.buf.length) {
                ex.channel.wait(ex);
                return;
            }
            this._queue.shift();
            if (item.cb)
                process.nextTick(item.cb);
            if (item.last) {
                ex.complete();
                return;
            }
        }
        if (this._needDrain) {
            this._needDrain = false;
            process.nextTick(() => this.emit('drain'));
        }
    }

    _finished() {
        this.writableFinished = true;
        this.writable = false;
        process.nextTick(() => {
            this.emit('finish');
            this.emit('close');
        });
    }

    _aborted() {
        if (this.writableFinished || this.destroyed)
            return;
        this.destroyed = true;
        this.writable = false;
        const err = codedError(Error, 'ERR_STREAM_DESTROYED',
                               'Cannot call write after a stream was destroyed');

        for (const item of this._queue.splice(0)) {
            if (item.cb)
                process.nextTick(item.cb, err);
        }
        this._queued = 0;
        process.nextTick(() => this.emit('close'));
    }

    destroy(err) {
        this._ex.gone(err);
        return this;
    }

    setTimeout(msecs, cb) {
        if (cb)
            this.on('timeout', cb);
        return this;
    }

    addTrailers() {}
    writeContinue() {}
    writeProcessing() {}
    writeEarlyHints() {}
    assignSocket() {}
    detachSocket() {}
}

function toBuffer(chunk, encoding) {
    if (typeof chunk === 'string')
        return Buffer.from(chunk, encoding || 'utf8');
    if (chunk instanceof Uint8Array)
        return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    if (chunk === null)
        throw codedError(TypeError, 'ERR_STREAM_NULL_VALUES', 'May not write null values to stream');
    throw codedError(TypeError, 'ERR_INVALID_ARG_TYPE',
                     'The "chunk" argument must be of type string or an instance of Buffer or Uint8Array');
}

/* An addon call on a live exchange; false (the exchange ended) when the
 * router aborted it. Other errors (a head libwarren refuses: too large)
 * end the exchange too, and throw. */
function warrenCall(ex, fn) {
    try {
        fn();
        return true;
    } catch (err) {
        ex.gone();
        if (err.code !== 'ECONNABORTED' && err.code !== 'ERR_STREAM_DESTROYED')
            throw err;
        return false;
    }
}

/* ----------------------------------------------------------------- server */

/* The process's one channel (a second server that listens serves nothing). */
const process_ = { channel: null };

class Server extends EventEmitter {
    constructor(options, requestListener) {
        super();
        if (typeof options === 'function') {
            requestListener = options;
            options = {};
        }
        if (requestListener)
            this.on('request', requestListener);
        this.listening = false;
        this.timeout = 0;
        this.keepAliveTimeout = 5000;
        this.headersTimeout = 60000;
        this.requestTimeout = 300000;
        this.maxHeadersCount = null;
        this.maxRequestsPerSocket = 0;
        this._closing = false;
        this._port = 0;
    }

    /* Any address and port the app names are Warren's listener's to
     * decide: the requests come from the channel. */
    listen(...args) {
        const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;

        if (typeof args[0] === 'number' || /^\d+$/.test(String(args[0])))
            this._port = Number(args[0]);
        else if (args[0] && typeof args[0] === 'object' && args[0].port !== undefined)
            this._port = Number(args[0].port);
        if (process_.channel === null) {
            process_.channel = new Channel(this);
            process_.channel.connect();
        } else {
            process.stderr.write('unit-http: this process already serves a server; '
                                 + 'a second listen() gets no requests\n');
        }
        this.listening = true;
        if (cb)
            this.once('listening', cb);
        process.nextTick(() => this.emit('listening'));
        return this;
    }

    address() {
        return this.listening ? { address: '::', family: 'IPv6', port: this._port } : null;
    }

    close(cb) {
        const ch = process_.channel;

        if (cb)
            this.once('close', cb);
        this._closing = true;
        if (ch !== null && ch.server === this)
            ch.drain();
        else
            process.nextTick(() => this.emit('close'));
        return this;
    }

    closeAllConnections() {}
    closeIdleConnections() {}

    setTimeout(msecs, cb) {
        if (typeof msecs === 'function')
            cb = msecs;
        if (cb)
            this.on('timeout', cb);
        return this;
    }

    ref() { return this; }
    unref() { return this; }
}

function createServer(options, requestListener) {
    return new Server(options, requestListener);
}

/* Node's http, with the server side replaced. Spelled out, so that an ES
 * module's `import { createServer } from 'http'` finds every name. */
exports.createServer = createServer;
exports.Server = Server;
exports.IncomingMessage = IncomingMessage;
exports.ServerResponse = ServerResponse;
exports.STATUS_CODES = http.STATUS_CODES;
exports.METHODS = http.METHODS;
exports.Agent = http.Agent;
exports.ClientRequest = http.ClientRequest;
exports.OutgoingMessage = http.OutgoingMessage;
exports.globalAgent = http.globalAgent;
exports.request = http.request;
exports.get = http.get;
exports.validateHeaderName = http.validateHeaderName;
exports.validateHeaderValue = http.validateHeaderValue;
exports.maxHeaderSize = http.maxHeaderSize;
exports.setMaxIdleHTTPParsers = http.setMaxIdleHTTPParsers;

'use strict';
/*
 * unit-http/websocket for Warren: the WebSocket server API Unit's Node.js
 * module gives (that of the `websocket` npm package: server, request,
 * connection), on the tunnel http.js hands to 'upgrade' listeners. The
 * protocol (RFC 6455) is spoken here: the router passes the bytes through.
 *
 *   const WebSocketServer = require('unit-http/websocket').server;
 *   const ws = new WebSocketServer({ httpServer: server });
 *   ws.on('request', (request) => {
 *       const conn = request.accept(null, request.origin);
 *       conn.on('message', (m) => conn.sendUTF(m.utf8Data));
 *   });
 *
 * Defaults that Unit takes from settings.http.websocket come from there
 * here too: maxReceivedFrameSize is max_frame_size, keepaliveInterval is
 * keepalive_interval (each unless the server's config names it).
 */
const crypto = require('crypto');
const EventEmitter = require('events');
const http = require('./http');

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';   /* RFC 6455 1.3 */
const VERSION = 13;
const OP = { CONT: 0, TEXT: 1, BINARY: 2, CLOSE: 8, PING: 9, PONG: 10 };
const FIN = 0x80, RSV = 0x70, OPCODE = 0x0f, MASKED = 0x80, LEN7 = 0x7f;
const LEN16 = 126, LEN64 = 127, CONTROL_MAX = 125;
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

const CLOSE = {
    NORMAL: 1000, GOING_AWAY: 1001, PROTOCOL_ERROR: 1002, UNPROCESSABLE_INPUT: 1003,
    RESERVED: 1004, NOT_PROVIDED: 1005, ABNORMAL: 1006, INVALID_DATA: 1007,
    POLICY_VIOLATION: 1008, MESSAGE_TOO_BIG: 1009, EXTENSION_REQUIRED: 1010,
    INTERNAL_SERVER_ERROR: 1011,
};

const DEFAULTS = {
    maxReceivedFrameSize: 0x100000,     /* Unit's max_frame_size default */
    maxReceivedMessageSize: 0x100000,
    fragmentOutgoingMessages: true,
    fragmentationThreshold: 0x4000,
    keepalive: true,
    keepaliveInterval: 30000,           /* Unit's keepalive_interval default */
    dropConnectionOnKeepaliveTimeout: true,
    keepaliveGracePeriod: 10000,
    assembleFragments: true,
    autoAcceptConnections: false,
    closeTimeout: 5000,
};

/* A close code a peer may send (RFC 6455 7.4). */
function validCloseCode(code) {
    return (code >= 1000 && code <= 1014 && code !== 1004 && code !== 1005 && code !== 1006)
        || (code >= 3000 && code <= 4999);
}

/* ----------------------------------------------------------------- server */

class WebSocketServer extends EventEmitter {
    constructor(config) {
        super();
        this.config = null;
        this.connections = [];
        this._servers = [];
        this._onUpgrade = (req, socket, head) => this._handleUpgrade(req, socket, head);
        if (config)
            this.mount(config);
    }

    mount(config) {
        this.config = Object.assign({}, DEFAULTS, config);
        this._named = config;
        const servers = [].concat(this.config.httpServer || []);

        if (servers.length === 0)
            throw new Error('You must specify an httpServer on which to mount the WebSocket server.');
        for (const s of servers) {
            s.on('upgrade', this._onUpgrade);
            this._servers.push(s);
        }
    }

    unmount() {
        for (const s of this._servers)
            s.removeListener('upgrade', this._onUpgrade);
        this._servers = [];
    }

    closeAllConnections() {
        for (const c of this.connections.slice())
            c.close(CLOSE.GOING_AWAY, 'Server is shutting down');
    }

    shutDown() {
        this.unmount();
        this.closeAllConnections();
    }

    /* The settings the router sent win over the defaults, not over what
     * the app configured. */
    _configFor(req) {
        const cfg = Object.assign({}, this.config);
        const ws = req._websocket;

        if (ws) {
            if (this._named.maxReceivedFrameSize === undefined && ws[2] > 0)
                cfg.maxReceivedFrameSize = ws[2];
            if (this._named.keepaliveInterval === undefined)
                cfg.keepaliveInterval = ws[1] * 1000;
            if (this._named.keepalive === undefined && ws[1] === 0)
                cfg.keepalive = false;
        }
        return cfg;
    }

    _handleUpgrade(req, socket, head) {
        const request = new WebSocketRequest(socket, req, this._configFor(req));

        try {
            request.readHandshake();
        } catch (err) {
            request.reject(err.httpCode || 400, err.message, err.headers);
            return;
        }
        request.once('requestAccepted', (conn) => {
            this.connections.push(conn);
            conn.once('close', (code, desc) => {
                const i = this.connections.indexOf(conn);

                if (i >= 0)
                    this.connections.splice(i, 1);
                this.emit('close', conn, code, desc);
            });
            this.emit('connect', conn);
        });
        if (this.config.autoAcceptConnections) {
            request.accept(request.requestedProtocols[0], request.origin);
        } else if (this.listenerCount('request') > 0) {
            this.emit('request', request);
        } else {
            request.reject(404, 'No handler is configured to accept the connection.');
        }
    }
}

/* ---------------------------------------------------------------- request */

class WebSocketRequest extends EventEmitter {
    constructor(socket, httpRequest, config) {
        super();
        this.socket = socket;
        this.httpRequest = httpRequest;
        this.config = config;
        this.resource = httpRequest.url;
        this.remoteAddress = socket.remoteAddress;
        this._settled = false;
    }

    readHandshake() {
        const h = this.httpRequest.headers;
        const fail = (code, message, headers) => {
            const err = new Error(message);

            err.httpCode = code;
            err.headers = headers;
            return err;
        };

        this.host = h.host;
        if (!this.host)
            throw fail(400, 'Client must provide a Host header.');
        this.key = h['sec-websocket-key'];
        if (!this.key || Buffer.from(this.key, 'base64').length !== 16)
            throw fail(400, 'Client must provide a valid Sec-WebSocket-Key header.');
        if (this.httpRequest.method !== 'GET' || !/\bwebsocket\b/i.test(h.upgrade || ''))
            throw fail(400, 'Not a WebSocket handshake.');
        this.webSocketVersion = parseInt(h['sec-websocket-version'], 10);
        if (this.webSocketVersion !== VERSION)
            throw fail(426, 'Unsupported websocket client version: ' + h['sec-websocket-version'],
                       { 'Sec-WebSocket-Version': String(VERSION) });
        this.websocketVersion = this.webSocketVersion;
        this.origin = h.origin || h['sec-websocket-origin'] || null;
        this.requestedProtocols = (h['sec-websocket-protocol'] || '').split(',')
            .map((p) => p.trim().toLowerCase()).filter((p) => p.length > 0);
        this.protocolFullCaseMap = {};
        for (const p of (h['sec-websocket-protocol'] || '').split(','))
            this.protocolFullCaseMap[p.trim().toLowerCase()] = p.trim();
        this.requestedExtensions = [];
        this.cookies = parseCookies(h.cookie);
        this.resourceURL = new URL(this.resource, 'http://' + this.host);
    }

    accept(acceptedProtocol, allowedOrigin, cookies) {
        if (this._settled)
            throw new Error('WebSocketRequest may only be accepted or rejected once.');
        this._settled = true;
        const lines = [
            'HTTP/1.1 101 Switching Protocols',
            'Upgrade: websocket',
            'Connection: Upgrade',
            'Sec-WebSocket-Accept: '
                + crypto.createHash('sha1').update(this.key + GUID).digest('base64'),
        ];
        let protocol = null;

        if (acceptedProtocol) {
            const key = String(acceptedProtocol).toLowerCase();

            if (!TOKEN.test(acceptedProtocol) || !this.requestedProtocols.includes(key)) {
                this._settled = false;
                this.reject(500);
                throw new Error('Specified protocol was not requested by the client.');
            }
            protocol = this.protocolFullCaseMap[key];
            lines.push('Sec-WebSocket-Protocol: ' + protocol);
        }
        for (const c of cookies || []) {
            if (!c || !TOKEN.test(c.name) || /[\r\n;]/.test(String(c.value)))
                throw new Error('Illegal cookie: ' + JSON.stringify(c));
            let line = `Set-Cookie: ${c.name}=${c.value}`;

            if (c.path) line += `; Path=${c.path}`;
            if (c.domain) line += `; Domain=${c.domain}`;
            if (c.expires) line += `; Expires=${new Date(c.expires).toUTCString()}`;
            if (c.maxage) line += `; Max-Age=${c.maxage}`;
            if (c.secure) line += '; Secure';
            if (c.httponly) line += '; HttpOnly';
            lines.push(line);
        }
        this.socket.write(lines.join('\r\n') + '\r\n\r\n');
        const conn = new WebSocketConnection(this.socket, [], protocol, false, this.config);

        conn.webSocketVersion = this.webSocketVersion;
        conn.remoteAddress = this.remoteAddress;
        this.emit('requestAccepted', conn);
        return conn;
    }

    reject(status, reason, extraHeaders) {
        if (this._settled)
            return;
        this._settled = true;
        status = status || 403;
        const text = reason ? String(reason).replace(/[\r\n]/g, ' ') : '';
        const lines = [`HTTP/1.1 ${status} ${http.STATUS_CODES[status] || 'Error'}`,
                       'Content-Type: text/plain'];

        for (const [k, v] of Object.entries(extraHeaders || {}))
            if (TOKEN.test(k) && !/[\r\n]/.test(String(v)))
                lines.push(`${k}: ${v}`);
        if (text)
            lines.push(`X-WebSocket-Reject-Reason: ${text}`);
        this.socket.end(lines.join('\r\n') + '\r\n\r\n' + (text ? text + '\n' : ''));
        this.emit('requestRejected', this);
    }
}

function parseCookies(header) {
    const out = [];

    for (const part of (header || '').split(';')) {
        const eq = part.indexOf('=');

        if (eq > 0)
            out.push({ name: part.slice(0, eq).trim(), value: part.slice(eq + 1).trim() });
    }
    return out;
}

/* ------------------------------------------------------------- connection */

class WebSocketConnection extends EventEmitter {
    constructor(socket, extensions, protocol, maskOutgoing, config) {
        super();
        this.socket = socket;
        this.protocol = protocol;
        this.extensions = extensions;
        this.config = config;
        this.connected = true;
        this.state = 'open';
        this.closeReasonCode = -1;
        this.closeDescription = null;
        this.closeEventEmitted = false;
        this._in = Buffer.alloc(0);
        this._fragments = [];
        this._fragmentBytes = 0;
        this._fragmentOp = 0;
        this._closeTimer = null;
        this._keepalive = null;
        this._graceTimer = null;
        this._decoder = new TextDecoder('utf-8', { fatal: true });
        socket.on('data', (data) => this._data(data));
        socket.on('end', () => this._socketGone());
        socket.on('close', () => this._socketGone());
        socket.on('error', (err) => this.emit('error', err));
        if (config.keepalive && config.keepaliveInterval > 0) {
            this._keepalive = setInterval(() => this._ping(), config.keepaliveInterval);
            this._keepalive.unref();
        }
    }

    /* ---- sending */

    sendUTF(data, cb) {
        this._sendMessage(OP.TEXT, Buffer.from(String(data), 'utf8'), cb);
    }

    sendBytes(data, cb) {
        if (!Buffer.isBuffer(data))
            throw new Error('You must pass a Node Buffer object to WebSocketConnection.prototype.sendBytes()');
        this._sendMessage(OP.BINARY, data, cb);
    }

    send(data, cb) {
        if (Buffer.isBuffer(data))
            this.sendBytes(data, cb);
        else if (typeof data.toString === 'function')
            this.sendUTF(data, cb);
        else
            throw new Error('Data provided must either be a Node Buffer or implement toString()');
    }

    ping(data) {
        this._frame(OP.PING, controlPayload(data), true);
    }

    pong(data) {
        this._frame(OP.PONG, controlPayload(data), true);
    }

    close(reasonCode, description) {
        if (!this.connected)
            return;
        reasonCode = reasonCode || CLOSE.NORMAL;
        if (!validCloseCode(reasonCode))
            throw new Error('Close code ' + reasonCode + ' is not valid.');
        this.closeReasonCode = reasonCode;
        this.closeDescription = description || '';
        this._sendClose(reasonCode, description);
        this.state = 'ending';
        this.connected = false;
        this._closeTimer = setTimeout(() => this.drop(reasonCode, description, true),
                                      this.config.closeTimeout);
        this._closeTimer.unref();
    }

    /* Ends the connection now: a close frame first unless skipCloseFrame
     * (it leaves before the tunnel ends), nothing read after. */
    drop(reasonCode, description, skipCloseFrame) {
        const frame = !skipCloseFrame && this.connected;

        reasonCode = reasonCode || CLOSE.PROTOCOL_ERROR;
        if (frame)
            this._sendClose(reasonCode, description);
        this.connected = false;
        this.state = 'closed';
        this._finish(reasonCode, description || '');
        if (frame)
            this.socket.end();
        else
            this.socket.destroy();
    }

    _sendMessage(op, payload, cb) {
        if (!this.connected) {
            if (cb)
                process.nextTick(cb, new Error('Connection closed'));
            return;
        }
        const max = this.config.fragmentOutgoingMessages ? this.config.fragmentationThreshold : Infinity;

        if (payload.length <= max) {
            this._frame(op, payload, true, cb);
            return;
        }
        for (let off = 0; off < payload.length; off += max) {
            const last = off + max >= payload.length;

            this._frame(off === 0 ? op : OP.CONT, payload.subarray(off, off + max), last,
                        last ? cb : undefined);
        }
    }

    _sendClose(code, description) {
        const reason = Buffer.from(description || '', 'utf8').subarray(0, CONTROL_MAX - 2);
        const payload = Buffer.alloc(2 + reason.length);

        payload.writeUInt16BE(code, 0);
        reason.copy(payload, 2);
        this._frame(OP.CLOSE, payload, true);
    }

    /* Server frames go unmasked (RFC 6455 5.1). */
    _frame(op, payload, fin, cb) {
        const n = payload.length;
        const head = Buffer.alloc(n < LEN16 ? 2 : n <= 0xffff ? 4 : 10);

        head[0] = (fin ? FIN : 0) | op;
        if (n < LEN16) {
            head[1] = n;
        } else if (n <= 0xffff) {
            head[1] = LEN16;
            head.writeUInt16BE(n, 2);
        } else {
            head[1] = LEN64;
            head.writeBigUInt64BE(BigInt(n), 2);
        }
        if (this.socket.destroyed || !this.socket.writable) {
            if (cb)
                process.nextTick(cb, new Error('Connection closed'));
            return;
        }
        this.socket.cork();
        this.socket.write(head);
        this.socket.write(payload, cb);
        this.socket.uncork();
    }

    /* ---- receiving */

    _data(data) {
        this._in = this._in.length ? Buffer.concat([this._in, data]) : data;
        this._sawData();
        while (this.state !== 'closed') {
            const used = this._parse();

            if (used === 0)
                break;
            this._in = this._in.subarray(used);
        }
    }

    /* One frame off the input: the bytes it took, 0 when it is not all
     * there yet. */
    _parse() {
        const b = this._in;

        if (b.length < 2)
            return 0;
        const fin = (b[0] & FIN) !== 0, op = b[0] & OPCODE;
        let len = b[1] & LEN7, at = 2;

        if (b[0] & RSV)
            return this._fail(CLOSE.PROTOCOL_ERROR, 'Reserved bits set without an extension');
        if (!(b[1] & MASKED))
            return this._fail(CLOSE.PROTOCOL_ERROR, 'Received an unmasked frame from the client');
        if (len === LEN16) {
            if (b.length < 4)
                return 0;
            len = b.readUInt16BE(2);
            at = 4;
        } else if (len === LEN64) {
            if (b.length < 10)
                return 0;
            const big = b.readBigUInt64BE(2);

            if (big > BigInt(this.config.maxReceivedFrameSize))
                return this._fail(CLOSE.MESSAGE_TOO_BIG, 'Frame size exceeds maximum');
            len = Number(big);
            at = 10;
        }
        if (len > this.config.maxReceivedFrameSize)
            return this._fail(CLOSE.MESSAGE_TOO_BIG, 'Frame size exceeds maximum');
        if (op >= OP.CLOSE && (len > CONTROL_MAX || !fin))
            return this._fail(CLOSE.PROTOCOL_ERROR, 'Control frames must be short and unfragmented');
        if (b.length < at + 4 + len)
            return 0;
        const mask = b.subarray(at, at + 4);
        const payload = Buffer.from(b.subarray(at + 4, at + 4 + len));

        for (let i = 0; i < payload.length; i++)
            payload[i] ^= mask[i & 3];
        this._frameIn(fin, op, payload);
        return at + 4 + len;
    }

    _frameIn(fin, op, payload) {
        switch (op) {
        case OP.TEXT:
        case OP.BINARY:
            if (this._fragmentOp !== 0)
                return this._fail(CLOSE.PROTOCOL_ERROR, 'Expected a continuation frame');
            if (fin)
                return this._message(op, payload);
            this._fragmentOp = op;
            return this._fragment(payload);
        case OP.CONT:
            if (this._fragmentOp === 0)
                return this._fail(CLOSE.PROTOCOL_ERROR, 'Unexpected continuation frame');
            this._fragment(payload);
            if (fin && this.state !== 'closed') {
                const whole = Buffer.concat(this._fragments);
                const kind = this._fragmentOp;

                this._fragments = [];
                this._fragmentBytes = 0;
                this._fragmentOp = 0;
                this._message(kind, whole);
            }
            return 0;
        case OP.PING:
            if (this.listenerCount('ping') > 0) {
                let cancelled = false;

                this.emit('ping', () => { cancelled = true; }, payload);
                if (!cancelled)
                    this.pong(payload);
            } else {
                this.pong(payload);
            }
            return 0;
        case OP.PONG:
            this.emit('pong', payload);
            return 0;
        case OP.CLOSE:
            return this._closeIn(payload);
        default:
            return this._fail(CLOSE.PROTOCOL_ERROR, 'Unrecognized opcode 0x' + op.toString(16));
        }
    }

    _fragment(payload) {
        this._fragmentBytes += payload.length;
        if (this._fragmentBytes > this.config.maxReceivedMessageSize)
            return this._fail(CLOSE.MESSAGE_TOO_BIG, 'Maximum message size exceeded');
        this._fragments.push(payload);
        return 0;
    }

    _message(op, payload) {
        if (payload.length > this.config.maxReceivedMessageSize)
            return this._fail(CLOSE.MESSAGE_TOO_BIG, 'Maximum message size exceeded');
        if (op === OP.BINARY) {
            this.emit('message', { type: 'binary', binaryData: payload });
            return 0;
        }
        let text;

        try {
            text = this._decoder.decode(payload);
        } catch (err) {
            return this._fail(CLOSE.INVALID_DATA, 'Invalid UTF-8 Data Received');
        }
        this.emit('message', { type: 'utf8', utf8Data: text });
        return 0;
    }

    _closeIn(payload) {
        let code = CLOSE.NOT_PROVIDED, desc = '';

        if (payload.length === 1)
            return this._fail(CLOSE.PROTOCOL_ERROR, 'Invalid close frame');
        if (payload.length >= 2) {
            code = payload.readUInt16BE(0);
            try {
                desc = this._decoder.decode(payload.subarray(2));
            } catch (err) {
                return this._fail(CLOSE.INVALID_DATA, 'Invalid UTF-8 in the close reason');
            }
            if (!validCloseCode(code))
                return this._fail(CLOSE.PROTOCOL_ERROR, 'Invalid close code ' + code);
        }
        if (this.state === 'open') {
            /* The peer closes: echo its code, then the tunnel ends. */
            this._sendClose(code === CLOSE.NOT_PROVIDED ? CLOSE.NORMAL : code, '');
            this.closeReasonCode = code;
            this.closeDescription = desc;
        }
        this.connected = false;
        this.state = 'closed';
        this._finish(this.closeReasonCode, this.closeDescription);
        this.socket.end();
        return 0;
    }

    /* The peer broke the protocol: close with code, drop the rest. */
    _fail(code, description) {
        this.closeReasonCode = code;
        this.closeDescription = description;
        this.drop(code, description);
        return 0;
    }

    _ping() {
        if (!this.connected)
            return;
        this.ping();
        if (this.config.dropConnectionOnKeepaliveTimeout && this._graceTimer === null) {
            this._graceTimer = setTimeout(() => this.drop(CLOSE.ABNORMAL, 'No data received in grace period', true),
                                          this.config.keepaliveGracePeriod);
            this._graceTimer.unref();
        }
    }

    _sawData() {
        if (this._graceTimer !== null) {
            clearTimeout(this._graceTimer);
            this._graceTimer = null;
        }
    }

    _socketGone() {
        if (this.closeEventEmitted)
            return;
        this.connected = false;
        this.state = 'closed';
        this._finish(this.closeReasonCode === -1 ? CLOSE.ABNORMAL : this.closeReasonCode,
                     this.closeDescription || '');
    }

    _finish(code, description) {
        clearInterval(this._keepalive);
        clearTimeout(this._closeTimer);
        clearTimeout(this._graceTimer);
        this._graceTimer = null;
        if (this.closeEventEmitted)
            return;
        this.closeEventEmitted = true;
        this.closeReasonCode = code;
        this.closeDescription = description;
        process.nextTick(() => this.emit('close', code, description));
    }
}

function controlPayload(data) {
    const b = data === undefined ? Buffer.alloc(0) : Buffer.from(data);

    return b.subarray(0, CONTROL_MAX);
}

for (const [name, code] of Object.entries(CLOSE))
    WebSocketConnection['CLOSE_REASON_' + name] = code;

exports.server = WebSocketServer;
exports.request = WebSocketRequest;
exports.connection = WebSocketConnection;
exports.version = require('./package.json').version;

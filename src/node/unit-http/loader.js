'use strict';
/*
 * `node --require unit-http/loader app.js`: an unchanged CommonJS app's
 * require('http') (or 'node:http') gets Warren's server (http.js), and
 * require('websocket') (the npm package of that name) websocket.js. Our
 * http.js is loaded first, while require('http') still means Node's.
 * ES modules are loader.mjs's (`--loader unit-http/loader.mjs`).
 */
const Module = require('module');
const ours = require('./http');

const load = Module._load;

Module._load = function (request, parent, isMain) {
    if (request === 'http' || request === 'node:http')
        return ours;
    if (request === 'websocket')
        return require('./websocket');
    return load.call(this, request, parent, isMain);
};

/*
 * `node --loader unit-http/loader.mjs app.mjs`: an unchanged ES module's
 * `import http from 'http'` (or 'node:http') gets Warren's server
 * (http.js), `import websocket from 'websocket'` websocket.js. CommonJS
 * requires are loader.js's (`--require unit-http/loader`); Unit's
 * documented command line names both.
 */
const ours = new URL('./http.js', import.meta.url).href;
const websocket = new URL('./websocket.js', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
    if (specifier === 'http' || specifier === 'node:http')
        return { url: ours, shortCircuit: true };
    if (specifier === 'websocket')
        return { url: websocket, shortCircuit: true };
    return nextResolve(specifier, context);
}

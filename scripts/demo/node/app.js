// make run's Node.js demo: an app written for Unit (require('unit-http')),
// served by Warren's unit-http package.
const http = require('unit-http');

http.createServer((req, res) => {
    res.setHeader('Content-Type', 'text/plain');
    res.end(`Hello from a Warren Node.js worker (Node ${process.version}, pid ${process.pid})\n`
            + `${req.method} ${req.url}\n`);
}).listen(8080);

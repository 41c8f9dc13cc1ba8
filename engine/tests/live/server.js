// A Node `http` server for engine/tests/live_http.rs: chunked bodies, trailers and
// `Expect: 100-continue` (Node answers `100 Continue` itself when nothing listens for
// 'checkContinue').
//
// Usage: node server.js PORT LOGFILE ADDRESS...
// Listens on PORT at every ADDRESS, prints "ready" on stdout once it does, and appends one
// JSON line per finished exchange to LOGFILE -- the truth the test compares the sniffer with.
//
// Routes:
//   GET  /chunked?n=N&size=S   N chunks of S bytes (chunked on HTTP/1.1, close-delimited on 1.0)
//   GET  /trailers             3 chunks and an X-Checksum trailer (HTTP/1.1)
//   POST /upload (or PUT)      reads the body (any framing), answers 201 "received <bytes>"
//   GET  /empty                204, no body
//   anything else              404 "not found"
'use strict';
const http = require('http');
const fs = require('fs');

const [port, logPath, ...addresses] = process.argv.slice(2);
const log = fs.openSync(logPath, 'a');

function handle(req, res) {
  let reqBody = 0;
  req.on('data', (c) => { reqBody += c.length; });
  req.on('end', () => {
    const u = new URL(req.url, 'http://x');
    let respBody = 0;
    res.on('finish', () => {
      fs.writeSync(log, JSON.stringify({
        addr: req.socket.remoteAddress,
        port: req.socket.remotePort,
        method: req.method,
        url: req.url,
        version: req.httpVersion,
        expect: (req.headers.expect || '').toLowerCase(),
        reqBody,
        status: res.statusCode,
        respBody,
      }) + '\n');
    });
    switch (u.pathname) {
      case '/chunked': {
        const n = Number(u.searchParams.get('n') || 4);
        const size = Number(u.searchParams.get('size') || 1000);
        res.writeHead(200, { 'Content-Type': 'text/plain' });
        for (let i = 0; i < n; i++) {
          res.write(String.fromCharCode(97 + (i % 26)).repeat(size));
        }
        respBody = n * size;
        res.end();
        break;
      }
      case '/trailers': {
        // Trailers need chunked framing: HTTP/1.1 only (Node refuses them on 1.0).
        const chunked = req.httpVersion === '1.1';
        res.writeHead(200, chunked
          ? { 'Content-Type': 'text/plain', Trailer: 'X-Checksum' }
          : { 'Content-Type': 'text/plain' });
        for (const part of ['alpha ', 'beta ', 'gamma\n']) {
          res.write(part);
          respBody += part.length;
        }
        if (chunked) {
          res.addTrailers({ 'X-Checksum': 'c0ffee' });
        }
        res.end();
        break;
      }
      case '/upload': {
        const text = `received ${reqBody}\n`;
        respBody = Buffer.byteLength(text);
        res.writeHead(201, { 'Content-Type': 'text/plain', 'Content-Length': respBody });
        res.end(text);
        break;
      }
      case '/empty':
        res.writeHead(204);
        res.end();
        break;
      default: {
        const text = 'not found\n';
        respBody = text.length;
        res.writeHead(404, { 'Content-Type': 'text/plain', 'Content-Length': respBody });
        res.end(text);
      }
    }
  });
}

let listening = 0;
for (const address of addresses) {
  const server = http.createServer(handle);
  server.keepAliveTimeout = 30000;
  server.listen(Number(port), address, () => {
    listening += 1;
    if (listening === addresses.length) {
      process.stdout.write('ready\n');
    }
  });
}

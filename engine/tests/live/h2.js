// HTTP/2 peers for engine/tests/live_http.rs: a Node `http2` server (cleartext, prior
// knowledge), a gRPC server and client (@grpc/grpc-js, path in $GRPC_JS), and a Node `http2`
// client that runs concurrent, interleaved streams on one connection.
//
// Usage:
//   node h2.js server H2PORT GRPCPORT LOGFILE   prints "ready" once both listen on 127.0.0.1
//                                               and ::1 (http2) / 127.0.0.1 (gRPC); appends one
//                                               JSON line per finished stream to LOGFILE -- the
//                                               truth the test compares the sniffer with
//   node h2.js client URLBASE                   concurrent streams on one connection
//   node h2.js grpc GRPCPORT                    sequential gRPC calls on one channel
//
// HTTP/2 routes:
//   GET  /data?size=N     200, N bytes written in 16000-byte pieces (many DATA frames)
//   POST /upload (or PUT) reads the body, 201 "received <bytes>"
//   GET  /trailers        200, a body and an x-checksum trailer (trailing HEADERS)
//   GET  /empty           204, HEADERS with END_STREAM
//   GET  /coded?coding=C&lines=N
//                         200, `content-encoding: C` (gzip or br): the N lines
//                         "line <i> of the coded body\n" compressed, written in 4000-byte
//                         pieces (several DATA frames); respBody is the compressed length
//   anything else         404 "not found"
// gRPC methods (messages are raw bytes, no protobuf): /test.Echo/Unary echoes "echo:"+request;
// /test.Echo/Fail answers NOT_FOUND (a trailers-only response); /test.Echo/Stream sends as many
// 100-byte messages as the request has bytes.
'use strict';
const http2 = require('http2');
const fs = require('fs');
const zlib = require('zlib');

const mode = process.argv[2];

function server(h2port, grpcPort, logPath) {
  const log = fs.openSync(logPath, 'a');
  const write = (o) => fs.writeSync(log, JSON.stringify(o) + '\n');
  const h2 = http2.createServer();
  h2.on('stream', (stream, headers) => {
    const method = headers[':method'];
    const url = headers[':path'];
    const sock = stream.session.socket;
    const addr = sock.remoteAddress;
    const port = sock.remotePort;
    let reqBody = 0;
    let status = 0;
    let respBody = 0;
    stream.on('data', (c) => { reqBody += c.length; });
    stream.on('close', () => {
      write({ addr, port, stream: stream.id, method, url, reqBody, status, respBody, grpc: null });
    });
    stream.on('end', () => {
      const u = new URL(url, 'http://x');
      switch (u.pathname) {
        case '/data': {
          let left = Number(u.searchParams.get('size') || 1000);
          status = 200;
          respBody = left;
          stream.respond({ ':status': 200, 'content-type': 'text/plain' });
          let i = 0;
          while (left > 0) {
            const n = Math.min(left, 16000);
            stream.write(Buffer.alloc(n, 97 + (i++ % 26)));
            left -= n;
          }
          stream.end();
          break;
        }
        case '/upload': {
          const text = `received ${reqBody}\n`;
          status = 201;
          respBody = Buffer.byteLength(text);
          stream.respond({ ':status': 201, 'content-type': 'text/plain' });
          stream.end(text);
          break;
        }
        case '/trailers': {
          const text = 'alpha beta gamma\n';
          status = 200;
          respBody = text.length;
          stream.respond({ ':status': 200, 'content-type': 'text/plain' }, { waitForTrailers: true });
          stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'c0ffee' }));
          stream.end(text);
          break;
        }
        case '/coded': {
          const coding = u.searchParams.get('coding');
          const lines = Number(u.searchParams.get('lines') || 1000);
          let plain = '';
          for (let i = 0; i < lines; i++) plain += `line ${i} of the coded body\n`;
          const wire = coding === 'br' ? zlib.brotliCompressSync(plain) : zlib.gzipSync(plain);
          status = 200;
          respBody = wire.length;
          stream.respond({ ':status': 200, 'content-type': 'text/plain', 'content-encoding': coding });
          for (let off = 0; off < wire.length; off += 4000) stream.write(wire.subarray(off, off + 4000));
          stream.end();
          break;
        }
        case '/empty':
          status = 204;
          stream.respond({ ':status': 204 }, { endStream: true });
          break;
        default: {
          const text = 'not found\n';
          status = 404;
          respBody = text.length;
          stream.respond({ ':status': 404 });
          stream.end(text);
        }
      }
    });
  });

  const grpc = require(process.env.GRPC_JS);
  const id = (x) => x;
  const method = (name, responseStream) => ({
    path: `/test.Echo/${name}`,
    requestStream: false,
    responseStream,
    requestSerialize: id,
    requestDeserialize: id,
    responseSerialize: id,
    responseDeserialize: id,
  });
  const service = { Unary: method('Unary', false), Fail: method('Fail', false), Stream: method('Stream', true) };
  const peer = (call) => {
    const p = call.getPeer();
    const i = p.lastIndexOf(':');
    return { addr: p.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(p.slice(i + 1)) };
  };
  // On the wire each message is 5 bytes of prefix plus the message (no compression).
  const grpcLog = (call, name, req, resp, code) => write({
    ...peer(call), stream: null, method: 'POST', url: `/test.Echo/${name}`,
    reqBody: 5 + req.length, status: 200, respBody: resp, grpc: code,
  });
  const gs = new grpc.Server();
  gs.addService(service, {
    Unary: (call, cb) => {
      const out = Buffer.concat([Buffer.from('echo:'), call.request]);
      grpcLog(call, 'Unary', call.request, 5 + out.length, 0);
      cb(null, out);
    },
    Fail: (call, cb) => {
      grpcLog(call, 'Fail', call.request, 0, grpc.status.NOT_FOUND);
      cb({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
    },
    Stream: (call) => {
      const n = call.request.length;
      grpcLog(call, 'Stream', call.request, n * 105, 0);
      for (let i = 0; i < n; i++) call.write(Buffer.alloc(100, 120));
      call.end();
    },
  });
  let waiting = 3;
  const ready = () => { if (--waiting === 0) process.stdout.write('ready\n'); };
  h2.listen(h2port, '127.0.0.1', () => {
    const v6 = http2.createServer();
    v6.on('stream', (s, h) => h2.emit('stream', s, h));
    v6.listen(h2port, '::1', ready);
    ready();
  });
  gs.bindAsync(`127.0.0.1:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err) => {
    if (err) throw err;
    ready();
  });
}

async function client(base) {
  const session = http2.connect(base);
  const one = (headers, body) => new Promise((resolve, reject) => {
    const req = session.request(headers, { endStream: body === undefined });
    req.on('response', () => {});
    req.on('data', () => {});
    req.on('end', resolve);
    req.on('error', reject);
    if (body !== undefined) {
      // In pieces, so DATA frames of different streams interleave.
      for (let off = 0; off < body.length; off += 7000) req.write(body.subarray(off, off + 7000));
      req.end();
    }
  });
  const all = [
    one({ ':path': '/data?size=200000' }),
    one({ ':method': 'POST', ':path': '/upload?a' }, Buffer.alloc(70000, 1)),
    one({ ':path': '/trailers' }),
    one({ ':method': 'PUT', ':path': '/upload?b' }, Buffer.alloc(30000, 2)),
    one({ ':path': '/empty' }),
    one({ ':path': '/data?size=5' }),
    one({ ':path': '/nope' }),
  ];
  await Promise.all(all);
  // A second round on the same connection: the HPACK tables are warm now.
  await Promise.all([one({ ':path': '/data?size=1' }), one({ ':path': '/trailers?again' })]);
  session.close();
}

function grpcClient(port) {
  const grpc = require(process.env.GRPC_JS);
  const id = (x) => x;
  const Client = grpc.makeGenericClientConstructor({
    Unary: { path: '/test.Echo/Unary', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
    Fail: { path: '/test.Echo/Fail', requestStream: false, responseStream: false, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
    Stream: { path: '/test.Echo/Stream', requestStream: false, responseStream: true, requestSerialize: id, requestDeserialize: id, responseSerialize: id, responseDeserialize: id },
  });
  const c = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  const unary = (name, req) => new Promise((resolve) => c[name](req, (err) => resolve(err)));
  const stream = (req) => new Promise((resolve, reject) => {
    const s = c.Stream(req);
    s.on('data', () => {});
    s.on('end', resolve);
    s.on('error', reject);
  });
  (async () => {
    for (const size of [0, 10, 1000, 100000]) {
      const err = await unary('Unary', Buffer.alloc(size, 65));
      if (err) throw err;
    }
    for (let i = 0; i < 2; i++) {
      const err = await unary('Fail', Buffer.from('x'));
      if (!err || err.code !== grpc.status.NOT_FOUND) throw new Error(`Fail answered ${err && err.code}`);
    }
    await stream(Buffer.alloc(50, 66));
    c.close();
  })().catch((e) => { console.error(e); process.exit(1); });
}

if (mode === 'server') server(Number(process.argv[3]), Number(process.argv[4]), process.argv[5]);
else if (mode === 'client') client(process.argv[3]).catch((e) => { console.error(e); process.exit(1); });
else if (mode === 'grpc') grpcClient(Number(process.argv[3]));
else { console.error('usage: node h2.js server|client|grpc ...'); process.exit(2); }

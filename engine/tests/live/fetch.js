// Node's `fetch` (undici: HTTP/1.1, keep-alive pool) as a client for engine/tests/live_http.rs.
//
// Usage: node fetch.js PLAN_JSON
// PLAN_JSON is an array of { "method", "url", "body"?: bytes, "stream"?: bool }. Requests run
// one after another (so they share pooled connections); with "stream" the body is a
// ReadableStream, which fetch sends chunked. Prints one line per request: status and body
// bytes received. Exits non-zero on any network error.
'use strict';

async function main() {
  const plan = JSON.parse(process.argv[2]);
  for (const step of plan) {
    const init = { method: step.method };
    if (step.body !== undefined) {
      const bytes = new Uint8Array(step.body).fill(120);
      if (step.stream) {
        const half = Math.floor(bytes.length / 2);
        init.body = new ReadableStream({
          start(controller) {
            controller.enqueue(bytes.subarray(0, half));
            controller.enqueue(bytes.subarray(half));
            controller.close();
          },
        });
        init.duplex = 'half';
      } else {
        init.body = bytes;
      }
    }
    const res = await fetch(step.url, init);
    const body = new Uint8Array(await res.arrayBuffer());
    process.stdout.write(`${res.status} ${body.length} ${step.method} ${step.url}\n`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`fetch failed: ${err && err.stack ? err.stack : err}\n`);
    if (err && err.cause) process.stderr.write(`cause: ${err.cause}\n`);
    process.exit(1);
  },
);

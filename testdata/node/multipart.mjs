// A multipart subscription server written from Apollo's "Multipart HTTP
// protocol for GraphQL subscriptions" document, with Apollo Router's
// framing, for `node multipart.mjs PORT`. No server on npm speaks that
// protocol (Apollo Router is a Rust binary; @apollo/server serves no
// subscriptions over HTTP), so this one executes with graphql-js and
// writes what the document specifies:
//
//   - Content-Type: multipart/mixed;boundary="graphql";subscriptionSpec="1.0"
//   - every part "content-type: application/json", each chunk ending in
//     "\r\n--graphql" (the delimiter line is finished by the next chunk);
//   - a heartbeat part {} at once and every HEARTBEAT_MS (default 5000);
//   - each result as {"payload": <execution result>};
//   - a fatal error as {"payload":null,"errors":[...]} (no locations or
//     path), then the closing delimiter;
//   - completion as the closing delimiter "--graphql--".
//
// A document that does not parse or validate is answered before the
// stream, with 400 and an application/json {"errors":[...]} body.
import http from 'node:http';
import { parse, validate, subscribe } from 'graphql';
import { schema, control, log, port } from './schema.mjs';

const heartbeatMs = Number(process.env.HEARTBEAT_MS ?? 5000);
const part = (json) => `\r\ncontent-type: application/json\r\n\r\n${JSON.stringify(json)}\r\n--graphql`;

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.once('end', () => resolve(body));
    req.once('error', reject);
  });
}

function refuse(res, errors) {
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: errors.map((e) => (e.toJSON ? e.toJSON() : { message: String(e.message ?? e) })) }));
}

async function serve(req, res) {
  const accept = req.headers.accept ?? '';
  if (req.method !== 'POST' || !accept.includes('multipart/mixed') || !accept.includes('subscriptionSpec')) {
    res.writeHead(406).end();
    return;
  }
  const params = JSON.parse(await readBody(req));
  let document;
  try {
    document = parse(params.query);
  } catch (err) {
    return refuse(res, [err]);
  }
  const invalid = validate(schema, document);
  if (invalid.length) return refuse(res, invalid);
  const result = await subscribe({
    schema,
    document,
    variableValues: params.variables,
    operationName: params.operationName,
    contextValue: { header: (name) => req.headers[name] ?? null },
  });
  if (!result[Symbol.asyncIterator]) return refuse(res, result.errors ?? []);

  res.writeHead(200, { 'content-type': 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"' });
  res.write('\r\n--graphql' + part({}));
  const beat = setInterval(() => res.write(part({})), heartbeatMs);
  // The client going away completes the subscription: the source
  // stream's return() runs.
  res.once('close', () => {
    clearInterval(beat);
    result.return?.();
  });
  try {
    for await (const value of result) {
      if (res.writableEnded) break;
      res.write(part({ payload: value }));
    }
    clearInterval(beat);
    res.end('--\r\n');
  } catch (err) {
    clearInterval(beat);
    // A fatal error: top-level errors without locations or path.
    res.end(part({ payload: null, errors: [{ message: String(err?.message ?? err) }] }) + '--\r\n');
  }
}

const server = http.createServer((req, res) => {
  if (control(req, res)) return;
  serve(req, res).catch((err) => {
    log('handler-error', { message: String(err?.message ?? err) });
    if (res.headersSent) res.destroy();
    else res.writeHead(500).end();
  });
});
server.listen(port(), '127.0.0.1', () => log('listening', { port: server.address().port }));

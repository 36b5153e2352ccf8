// graphql-sse's own Node handler as an SSE upstream ("distinct connections
// mode"): `node graphql-sse.mjs PORT`.
import http from 'node:http';
import { createHandler } from 'graphql-sse/lib/use/http';
import { schema, control, log, port } from './schema.mjs';

const handler = createHandler({
  schema,
  context: (req) => ({ header: (name) => req.raw.headers[name] ?? null }),
});

const server = http.createServer(async (req, res) => {
  if (control(req, res)) return;
  try {
    await handler(req, res);
  } catch (err) {
    // A source stream that throws rejects the handler after the stream
    // started: all that is left is to cut the response.
    log('handler-error', { message: String(err?.message ?? err) });
    if (res.headersSent) res.destroy();
    else res.writeHead(500).end();
  }
});
server.listen(port(), '127.0.0.1', () => log('listening', { port: server.address().port }));

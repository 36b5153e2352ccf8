// GraphQL Yoga as an SSE upstream: `node yoga.mjs PORT`. Yoga streams a
// subscription as text/event-stream to a POST with Accept: text/event-stream.
import http from 'node:http';
import { createYoga } from 'graphql-yoga';
import { schema, control, log, port } from './schema.mjs';

const yoga = createYoga({
  schema,
  context: ({ request }) => ({ header: (name) => request.headers.get(name) }),
  logging: false,
  maskedErrors: false,
});

const server = http.createServer((req, res) => {
  if (!control(req, res)) yoga(req, res);
});
server.listen(port(), '127.0.0.1', () => log('listening', { port: server.address().port }));

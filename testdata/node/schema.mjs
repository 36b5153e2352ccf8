// The schema every test upstream serves, and the test-control routes they
// share. A test drives a server through its HTTP routes and reads what the
// server saw from the JSON lines it prints on stdout.
import { buildSchema } from 'graphql';

export const schema = buildSchema(/* GraphQL */ `
  type Query {
    hello: String!
  }
  type Headers {
    authorization: String
    apiKey: String
  }
  type Subscription {
    "Each value POSTed to /publish, until the client goes away."
    ticks: Int!
    "from, from-1, ..., 1, then the subscription completes."
    countdown(from: Int!): Int!
    "1, then the source stream throws."
    failing: Int!
    "The request headers the server received, once, then completes."
    whoami: Headers!
  }
`);

// log prints one line the Go test reads: {"event":"...", ...}.
export function log(event, fields = {}) {
  process.stdout.write(JSON.stringify({ event, ...fields }) + '\n');
}

const listeners = new Set();

// ticks is an async iterator fed by publish. Its return() (the client went
// away) resolves at once even while it waits for the next value, so the
// "end" line comes when the server notices the closed request.
function ticks() {
  const queue = [];
  let wake = null;
  let done = false;
  const push = (v) => {
    queue.push(v);
    if (wake) wake();
  };
  listeners.add(push);
  log('subscribe', { field: 'ticks' });
  const finish = () => {
    if (!done) {
      done = true;
      listeners.delete(push);
      log('end', { field: 'ticks' });
    }
    if (wake) wake();
    return Promise.resolve({ value: undefined, done: true });
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      while (!done && queue.length === 0) {
        await new Promise((r) => (wake = r));
        wake = null;
      }
      if (done) return { value: undefined, done: true };
      return { value: { ticks: queue.shift() }, done: false };
    },
    return: finish,
    throw: finish,
  };
}

const subscribers = {
  ticks: () => ticks(),
  countdown: async function* ({ from }) {
    log('subscribe', { field: 'countdown' });
    for (let i = from; i > 0; i--) yield { countdown: i };
  },
  failing: async function* () {
    log('subscribe', { field: 'failing' });
    yield { failing: 1 };
    throw new Error('boom');
  },
  // ctx.header(name) is the request header each server passes in context.
  whoami: async function* (_args, ctx) {
    log('subscribe', { field: 'whoami' });
    yield { whoami: { authorization: ctx.header('authorization'), apiKey: ctx.header('x-api-key') } };
  },
};
schema.getQueryType().getFields().hello.resolve = () => 'world';
for (const [name, field] of Object.entries(schema.getSubscriptionType().getFields())) {
  field.subscribe = (_root, args, ctx) => subscribers[name](args, ctx);
  field.resolve = (payload) => payload[name];
}

// control answers the test-control routes; it returns false for others.
//   GET /health        200 once listening
//   POST /publish?v=N  pushes N to every ticks subscriber; answers how many
export function control(req, res) {
  const url = new URL(req.url, 'http://localhost');
  if (url.pathname === '/health') {
    res.writeHead(200).end('ok');
    return true;
  }
  if (url.pathname === '/publish') {
    const v = Number(url.searchParams.get('v'));
    for (const push of listeners) push(v);
    res.writeHead(200).end(String(listeners.size));
    return true;
  }
  return false;
}

// port reads the port from argv[2] or PORT.
export function port() {
  const p = Number(process.argv[2] ?? process.env.PORT);
  if (!Number.isInteger(p) || p <= 0) {
    console.error('usage: node server.mjs PORT');
    process.exit(2);
  }
  return p;
}

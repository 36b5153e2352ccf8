// snippets.js: URLs, curl commands and JavaScript snippets for the current inputs.
// Every user-supplied string is escaped for its target: URLs through
// URLSearchParams, shell words in single quotes, JS strings via JSON.stringify.

import {info, token} from './api.js';

/** opPath percent-encodes each segment of the operation's path. */
export function opPath(op) {
  const p = typeof op.path === 'string' && op.path.startsWith('/operations/') ? op.path : `/operations/${op.name}`;
  return p.split('/').map((seg) => {
    try { return encodeURIComponent(decodeURIComponent(seg)); } catch { return encodeURIComponent(seg); }
  }).join('/');
}

/**
 * params builds the query parameters for a GET: flags first, then one
 * parameter per variable (lists and objects as JSON text), then the token
 * when asked (EventSource in query-parameter mode).
 */
export function params(vars, {sse, once, live, withToken} = {}) {
  const q = new URLSearchParams();
  if (live) q.set('wg_live', 'true');
  if (sse) q.set('wg_sse', 'true');
  if (once) q.set('wg_subscribe_once', 'true');
  for (const [k, v] of Object.entries(vars || {})) {
    q.set(k, v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
  if (withToken && token.value && token.transport === 'query' && info.auth.queryParam) q.set(info.auth.queryParam, token.value);
  return q;
}

/** url is the same-origin URL (path + query) for a request. */
export function url(op, vars, opts = {}) {
  const q = op.method === 'POST' ? new URLSearchParams() : params(vars, opts);
  const s = q.toString();
  return opPath(op) + (s ? `?${s}` : '');
}

/** sh quotes one shell word. */
export const sh = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/** js quotes one JavaScript string literal. */
export const js = (s) => JSON.stringify(String(s));

const needsToken = (op) => !!token.value || op.requiresAuthentication === true;

/** curl builds the exact command for the current inputs. mode: run | sse | once | live. */
export function curl(op, vars, mode = 'run') {
  const origin = location.origin;
  const lines = [];
  const auth = needsToken(op)
    ? (token.inSnippets && token.value ? `-H ${sh(`Authorization: Bearer ${token.value}`)}` : '-H "Authorization: Bearer $FB_TOKEN"')
    : null;
  if (op.method === 'POST') {
    lines.push(`curl -sS -X POST ${sh(origin + opPath(op))}`);
    lines.push(`-H 'Content-Type: application/json'`);
    if (auth) lines.push(auth);
    lines.push(`--data-raw ${sh(JSON.stringify(vars || {}))}`);
  } else {
    const streaming = mode === 'sse' || mode === 'live';
    // curl can send headers, so the token goes in Authorization, never in the URL.
    lines.push(`curl -sS${streaming ? ' -N' : ''} ${sh(origin + url(op, vars, {sse: streaming, live: mode === 'live', once: mode === 'once'}))}`);
    if (auth) lines.push(auth);
  }
  return lines.join(' \\\n  ');
}

/** eventSource builds a copyable EventSource snippet (subscriptions and live queries). */
export function eventSource(op, vars, {live = false} = {}) {
  const q = params(vars, {sse: true, live});
  const lines = [`const url = new URL(${js(opPath(op))}, ${js(location.origin)});`];
  for (const [k, v] of q) lines.push(`url.searchParams.set(${js(k)}, ${js(v)});`);
  if (needsToken(op)) {
    if (token.transport === 'cookie') {
      lines.unshift(`// The ${info.auth.cookie} cookie carries the token (same origin only).`);
    } else if (!info.auth.queryParam) {
      lines.unshift('// This gateway reads no token on streams: auth.queryParam and auth.cookie are off.');
    } else {
      const tv = token.inSnippets && token.value ? js(token.value) : `"<your JWT>"`;
      lines.unshift(`// EventSource cannot send an Authorization header: the token goes in the URL.`,
        `const token = ${tv};`);
      lines.push(`url.searchParams.set(${js(info.auth.queryParam)}, token);`);
    }
  }
  lines.push(
    '',
    'const es = new EventSource(url);',
    'es.onmessage = (e) => console.log(e.lastEventId, JSON.parse(e.data));',
    '// The gateway ends every stream with a "done" event: close, or the browser reconnects.',
    'es.addEventListener("done", () => es.close());',
    'es.addEventListener("gap", (e) => console.warn("missed events", JSON.parse(e.data)));',
    '// On a lost connection the browser reconnects and resumes with Last-Event-ID.',
    'es.onerror = () => { if (es.readyState === EventSource.CLOSED) console.error("stream refused"); };',
  );
  return lines.join('\n');
}

/** fetchSnippet builds a fetch() snippet for a query, mutation or subscribe-once. */
export function fetchSnippet(op, vars, {once = false} = {}) {
  const headers = {};
  if (op.method === 'POST') headers['Content-Type'] = 'application/json';
  const lines = [];
  if (needsToken(op)) {
    const tv = token.inSnippets && token.value ? js(token.value) : `"<your JWT>"`;
    lines.push(`const token = ${tv};`);
  }
  const h = Object.entries(headers).map(([k, v]) => `${js(k)}: ${js(v)}`);
  if (needsToken(op)) h.push('Authorization: `Bearer ${token}`');
  const opts = [];
  if (op.method === 'POST') opts.push('method: "POST"');
  if (h.length) opts.push(`headers: {${h.join(', ')}}`);
  if (op.method === 'POST') opts.push(`body: JSON.stringify(${JSON.stringify(vars || {})})`);
  lines.push(`const res = await fetch(new URL(${js(url(op, vars, {once}))}, ${js(location.origin)})${opts.length ? `, {\n  ${opts.join(',\n  ')},\n}` : ''});`);
  lines.push(once
    ? 'const result = res.status === 204 ? null /* ended without a result */ : await res.json();'
    : 'const result = await res.json();');
  lines.push('if (!res.ok) throw new Error(`${res.status} ${result.code}: ${result.message}`);');
  return lines.join('\n');
}

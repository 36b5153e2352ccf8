// api.js: the gateway endpoints, the token store, and readable error messages.
//
// Endpoints (same origin):
//   GET  /operations           the operation index
//   GET  /operations/<name>    queries (variables as query parameters) and subscriptions
//   POST /operations/<name>    mutations (JSON body of variables)
//   GET  /_/info               {"dev","tokenMinting","auth":{"cookie","queryParam"}}; 404 is fine
//   POST /_/token              dev only: {"sub","roles","claims","ttl"} -> {"token"}
//   GET  /_/stats              SSE, one sample per second (see stats.js)

const TOKEN_KEY = 'fireboom.token';
const TRANSPORT_KEY = 'fireboom.transport';
const SNIPPET_KEY = 'fireboom.snippetToken';

/** Gateway facts from /_/info, with the contract's defaults. */
export const info = {dev: false, tokenMinting: false, auth: {cookie: 'fb_token', queryParam: 'access_token'}};

export async function loadInfo() {
  try {
    const res = await fetch('/_/info', {headers: {Accept: 'application/json'}, cache: 'no-store'});
    if (!res.ok) return info;
    const j = await res.json();
    info.dev = j.dev === true;
    info.tokenMinting = j.tokenMinting === true;
    if (j.auth && typeof j.auth === 'object') {
      // "" means the gateway does not read tokens from there (auth.cookie
      // is off by default; auth.queryParam can be turned off).
      if (j.auth.cookie === '' || isName(j.auth.cookie)) info.auth.cookie = j.auth.cookie;
      if (j.auth.queryParam === '' || isName(j.auth.queryParam)) info.auth.queryParam = j.auth.queryParam;
    }
  } catch { /* an older gateway without /_/info: keep the defaults */ }
  return info;
}

const isName = (s) => typeof s === 'string' && /^[A-Za-z0-9_.-]{1,64}$/.test(s);

export async function loadOperations() {
  const res = await request('GET', '/operations');
  if (!res.ok) throw Object.assign(new Error('cannot load /operations'), {res});
  const list = res.body && Array.isArray(res.body.operations) ? res.body.operations : [];
  return list.filter((o) => o && typeof o.name === 'string' && typeof o.kind === 'string')
    .map((o) => ({...o, rbac: normalizeRbac(o.rbac)}))
    .sort((a, b) => a.name.localeCompare(b.name));
}

const RBAC_KEYS = ['requireMatchAll', 'requireMatchAny', 'denyMatchAll', 'denyMatchAny'];

/**
 * normalizeRbac accepts the rule lists under camelCase or Go-style
 * PascalCase keys (RequireMatchAny), with null for an empty list, and
 * returns {requireMatchAll: [...], ...} with only non-empty lists, or null.
 */
export function normalizeRbac(r) {
  if (!r || typeof r !== 'object') return null;
  const out = {};
  for (const k of RBAC_KEYS) {
    const v = r[k] ?? r[k[0].toUpperCase() + k.slice(1)];
    if (Array.isArray(v) && v.length) out[k] = v.map(String);
  }
  return Object.keys(out).length ? out : null;
}

// ---- token -------------------------------------------------------------

const listeners = new Set();
/** Calls fn() whenever the token or how it is sent changes. */
export const onTokenChange = (fn) => listeners.add(fn);

export const token = {
  get value() { return sessionStorage.getItem(TOKEN_KEY) || ''; },
  /**
   * 'query' (the auth.queryParam parameter) or 'cookie' (the auth.cookie
   * cookie) for EventSource; only one the gateway reads (see transports()).
   */
  get transport() {
    const want = sessionStorage.getItem(TRANSPORT_KEY) === 'cookie' ? 'cookie' : 'query';
    const ok = transports();
    return ok.includes(want) || !ok.length ? want : ok[0];
  },
  get inSnippets() { return sessionStorage.getItem(SNIPPET_KEY) === '1'; },
  set(value, transport = this.transport) {
    value = (value || '').trim().replace(/^Bearer\s+/i, '');
    if (value) sessionStorage.setItem(TOKEN_KEY, value); else sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(TRANSPORT_KEY, transport);
    syncCookie();
    listeners.forEach((fn) => fn());
  },
  setInSnippets(on) {
    sessionStorage.setItem(SNIPPET_KEY, on ? '1' : '0');
    listeners.forEach((fn) => fn());
  },
};

/** The ways this gateway reads a token on a stream: 'query', 'cookie', both or none. */
export function transports() {
  return [info.auth.queryParam ? 'query' : '', info.auth.cookie ? 'cookie' : ''].filter(Boolean);
}

/** True when the token only holds characters that are safe in a cookie and a URL. */
export const tokenLooksValid = (t) => /^[A-Za-z0-9._~+/=-]+$/.test(t);

/** The cookie exists only in cookie mode, so the choice in the UI is the real one. */
export function syncCookie() {
  const name = info.auth.cookie;
  if (!name) return;
  const t = token.value;
  const secure = location.protocol === 'https:' ? '; Secure' : '';
  if (t && token.transport === 'cookie' && tokenLooksValid(t)) {
    document.cookie = `${name}=${t}; Path=/; SameSite=Strict${secure}`;
  } else {
    document.cookie = `${name}=; Path=/; Max-Age=0; SameSite=Strict${secure}`;
  }
}

/** Unverified JWT payload, for display only (the gateway verifies). */
export function decodeJwt(t) {
  const part = (t || '').split('.')[1];
  if (!part) return null;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '=');
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const v = JSON.parse(new TextDecoder().decode(bytes));
    return v && typeof v === 'object' ? v : null;
  } catch {
    return null;
  }
}

export function authHeaders() {
  const t = token.value;
  return t ? {Authorization: `Bearer ${t}`} : {};
}

export async function mintToken(req) {
  return request('POST', '/_/token', req);
}

// ---- requests ----------------------------------------------------------

/**
 * request() never throws: it answers
 * {ok, status, statusText, ms, body (parsed JSON or text), headers, network (error text)}.
 */
export async function request(method, url, body, {signal, headers} = {}) {
  const h = {Accept: 'application/json', ...authHeaders(), ...headers};
  const init = {method, headers: h, signal, cache: 'no-store'};
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const t0 = performance.now();
  try {
    const res = await fetch(url, init);
    const text = await res.text();
    const ms = performance.now() - t0;
    let parsed = text;
    if (text && /json/i.test(res.headers.get('Content-Type') || '')) {
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    }
    return {ok: res.ok, status: res.status, statusText: res.statusText, ms, body: parsed,
      size: text.length, headers: res.headers};
  } catch (e) {
    const aborted = e && e.name === 'AbortError';
    return {ok: false, status: 0, ms: performance.now() - t0, aborted,
      network: aborted ? 'cancelled' : String(e && e.message || e)};
  }
}

/**
 * Probe an SSE URL whose EventSource failed before opening: EventSource
 * cannot read HTTP statuses, fetch can. Read the status and (for non-200)
 * the JSON body, then abort, so no subscription is left running.
 */
export async function probe(url) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), 10_000);
  try {
    const res = await fetch(url, {headers: {Accept: 'text/event-stream'}, cache: 'no-store', signal: ctrl.signal});
    const out = {ok: res.ok, status: res.status, statusText: res.statusText, headers: res.headers,
      contentType: res.headers.get('Content-Type') || ''};
    if (!res.ok) {
      const text = await res.text();
      try { out.body = JSON.parse(text); } catch { out.body = text; }
    }
    return out;
  } catch (e) {
    return {ok: false, status: 0, network: String(e && e.message || e)};
  } finally {
    clearTimeout(timer);
    ctrl.abort();
  }
}

// ---- messages ----------------------------------------------------------

const TITLES = {
  0: 'The gateway cannot be reached',
  400: 'The variables were rejected',
  401: 'Authentication required',
  403: 'Forbidden: your roles are not enough',
  404: 'Operation not found',
  405: 'Method not allowed',
  413: 'Request too large',
  429: 'Too many requests',
  502: 'The upstream GraphQL server is unavailable',
  503: 'The gateway is not ready or is shutting down',
  504: 'The upstream did not answer in time',
};

/**
 * describe(res, op) turns a failed answer into
 * {status, code, title, hint, message, fields: [{path, message}]} for display.
 */
export function describe(res, op) {
  const b = res.body && typeof res.body === 'object' ? res.body : {};
  const status = res.status || 0;
  const title = TITLES[status] || (status >= 500 ? 'Gateway error' : `Request failed`);
  const message = typeof b.message === 'string' ? b.message
    : Array.isArray(b.errors) && b.errors[0] && typeof b.errors[0].message === 'string' ? b.errors[0].message
    : typeof res.body === 'string' ? res.body.slice(0, 300) : res.network || '';
  const fields = Array.isArray(b.errors) ? b.errors
    .filter((e) => e && typeof e.propertyPath === 'string')
    .map((e) => ({path: e.propertyPath, message: String(e.message || '')})) : [];
  let hint = '';
  switch (status) {
    case 0: hint = res.aborted ? 'The request was cancelled.' : 'Is the gateway running? Check its log.'; break;
    case 400: hint = fields.length ? 'Fix the marked fields and run again.' : 'Check the variables.'; break;
    case 401: hint = token.value
      ? 'The token was refused (expired, bad signature, wrong issuer or audience). Paste or mint a new one.'
      : 'This operation needs a token: paste a JWT in the Token box' + (info.tokenMinting ? ' or mint one.' : '.'); break;
    case 403: hint = 'The token is valid, but its roles do not satisfy this operation\u2019s rules' +
      (op && op.rbac ? ` (${rbacText(op.rbac)}).` : '.'); break;
    case 404: hint = 'It may have been removed or failed to load; reload the list.'; break;
    case 429: {
      const ra = res.headers && res.headers.get('Retry-After');
      hint = ra ? `Retry after ${ra} s.` : 'Wait a moment and try again.'; break;
    }
    case 502: hint = 'The gateway could not reach or was refused by the GraphQL server. Nothing was streamed.'; break;
    case 503: hint = 'Try again in a moment.'; break;
    default: break;
  }
  return {status, code: typeof b.code === 'string' ? b.code : '', title, hint, message, fields};
}

/** One line describing an rbac object. */
export function rbacText(rbac) {
  const parts = [];
  const add = (k, label) => {
    if (Array.isArray(rbac[k]) && rbac[k].length) parts.push(`${label} ${rbac[k].join(', ')}`);
  };
  add('requireMatchAll', 'needs all of');
  add('requireMatchAny', 'needs any of');
  add('denyMatchAll', 'denied with all of');
  add('denyMatchAny', 'denied with any of');
  return parts.join('; ');
}

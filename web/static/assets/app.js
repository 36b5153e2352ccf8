// app.js: the fireboom dashboard (entry module).
//
// Stable data-testid attributes, for browser tests:
//   page:       app, dev-badge, theme-toggle, gateway-origin
//   token:      token-input, token-show, token-clear, token-state, token-summary,
//               token-transport-query, token-transport-cookie, token-help-box, snippet-token,
//               mint-box (a closed <details>, shown when minting is on; mint-toggle opens it), mint-form, mint-sub, mint-roles, mint-claims, mint-ttl, mint-submit, mint-error
//   list:       op-filter, op-refresh, op-list, op-group (data-folder), op-item (data-name,
//               data-kind), kind, lock, roles, op-count, op-empty, load-error
//   panel:      op-panel (data-name), op-title, auth-note, variables, field (data-var),
//               var-input (data-var), field-error, no-variables,
//               run (query/mutation), subscribe (subscription, or live query), once
//               (subscribe-once), cancel, result, result-status, result-time, result-body,
//               result-empty, result-pending, graphql-errors,
//               error-message (data-status, data-code; also inside a stream),
//               tab-curl, tab-js, snippet-curl, snippet-js, copy-curl, copy-js
//   streams:    streams, stream-count, stop-all, clear-ended, stream (data-name,
//               data-state = connecting|open|streaming|reconnecting|done|error|failed|stopped),
//               stream-vars, stream-status (aria-live), event-count, event-rate, stream-elapsed, stop,
//               stream-close, events, event (data-id), gap, event-done, reconnected
//   gateway:    stats, stats-status, stats-card, stats-open-streams, stats-upstream-connections,
//               stats-upstream-subscriptions, stats-events-in, stats-events-out,
//               stats-<same>-chart
//
// Routing: #/<operation name> selects an operation (e.g. #/chat/Messages).

import {h, $, icon} from './dom.js';
import {info, loadInfo, loadOperations, token, onTokenChange, decodeJwt, tokenLooksValid,
  syncCookie, mintToken, describe} from './api.js';
import {buildPanel, kindBadge} from './panel.js';
import {mountStats} from './stats.js';

const state = {ops: [], panels: new Map(), selected: ''};
const listEl = $('[data-testid=op-list]');
const panelHost = $('#panel-host');

// ---- theme ----------------------------------------------------------------

const THEMES = ['auto', 'light', 'dark'];
function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  const b = $('[data-testid=theme-toggle]');
  b.replaceChildren(icon(t === 'auto' ? 'auto' : t === 'light' ? 'sun' : 'moon'), h('span', {class: 'sr-only'}, `Theme: ${t}`));
  b.title = `Theme: ${t} (click to change)`;
}
$('[data-testid=theme-toggle]').addEventListener('click', () => {
  const cur = document.documentElement.dataset.theme || 'auto';
  const next = THEMES[(THEMES.indexOf(cur) + 1) % THEMES.length];
  localStorage.setItem('fireboom.theme', next);
  applyTheme(next);
});
applyTheme(THEMES.includes(localStorage.getItem('fireboom.theme')) ? localStorage.getItem('fireboom.theme') : 'auto');

// ---- token ----------------------------------------------------------------

const tokenInput = $('[data-testid=token-input]');
const tokenSummary = $('[data-testid=token-summary]');
const tokenState = $('[data-testid=token-state]');

function renderToken() {
  const t = token.value;
  if (tokenInput.value.trim() !== t) tokenInput.value = t;
  $(`[data-testid=token-transport-${token.transport}]`).checked = true;
  $('[data-testid=snippet-token]').checked = token.inSnippets;
  $('#token-box').classList.toggle('has-token', !!t);
  if (!t) {
    tokenState.textContent = 'no token';
    tokenSummary.replaceChildren('Operations with a lock answer 401 without one.');
    return;
  }
  const p = decodeJwt(t);
  if (!p || !tokenLooksValid(t)) {
    tokenState.textContent = 'set';
    tokenSummary.replaceChildren(h('span', {class: 'warn'}, 'This does not look like a JWT; the gateway will decide.'));
    return;
  }
  const bits = [];
  if (p.sub) bits.push(`sub ${p.sub}`);
  const roles = Array.isArray(p.roles) ? p.roles : [];
  if (roles.length) bits.push(`roles ${roles.join(', ')}`);
  let expired = false;
  if (typeof p.exp === 'number') {
    const left = p.exp * 1000 - Date.now();
    expired = left <= 0;
    bits.push(expired ? 'expired' : `expires in ${fmtDuration(left)}`);
  }
  tokenState.textContent = expired ? 'expired' : String(p.sub || 'set');
  tokenState.dataset.state = expired ? 'expired' : 'ok';
  tokenSummary.replaceChildren(h('span', {class: expired ? 'warn' : ''}, bits.join(' · ') || 'JWT without sub, roles or exp'));
}

function fmtDuration(ms) {
  const m = Math.round(ms / 60000);
  if (m < 1) return 'under a minute';
  if (m < 120) return `${m} min`;
  const hr = Math.round(m / 60);
  return hr < 48 ? `${hr} h` : `${Math.round(hr / 24)} days`;
}

$('#token-form').addEventListener('submit', (e) => { e.preventDefault(); token.set(tokenInput.value); });
tokenInput.addEventListener('change', () => token.set(tokenInput.value));
tokenInput.addEventListener('input', () => token.set(tokenInput.value));
$('[data-testid=token-clear]').addEventListener('click', () => { token.set(''); tokenInput.focus(); });
$('[data-testid=token-show]').addEventListener('click', (e) => {
  const show = tokenInput.type === 'password';
  tokenInput.type = show ? 'text' : 'password';
  e.currentTarget.setAttribute('aria-pressed', String(show));
});
for (const mode of ['query', 'cookie']) {
  $(`[data-testid=token-transport-${mode}]`).addEventListener('change', (e) => {
    if (e.target.checked) token.set(token.value, mode);
  });
}
$('[data-testid=snippet-token]').addEventListener('change', (e) => token.setInSnippets(e.target.checked));
onTokenChange(renderToken);
setInterval(renderToken, 30_000); // keep "expires in" fresh

$('[data-testid=mint-form]').addEventListener('submit', async (e) => {
  e.preventDefault();
  const f = e.currentTarget;
  const errEl = $('[data-testid=mint-error]');
  errEl.hidden = true;
  let claims = {};
  const claimsText = $('[data-testid=mint-claims]').value.trim();
  if (claimsText) {
    try { claims = JSON.parse(claimsText); } catch (err) {
      errEl.textContent = `Claims are not valid JSON: ${err.message}`;
      errEl.hidden = false;
      return;
    }
  }
  const roles = $('[data-testid=mint-roles]').value.split(',').map((s) => s.trim()).filter(Boolean);
  const req = {sub: $('[data-testid=mint-sub]').value.trim(), roles, claims, ttl: $('[data-testid=mint-ttl]').value.trim() || '1h'};
  const btn = $('[data-testid=mint-submit]');
  btn.disabled = true;
  const res = await mintToken(req);
  btn.disabled = false;
  if (res.ok && res.body && typeof res.body.token === 'string') {
    token.set(res.body.token);
    $('[data-testid=mint-box]').open = false;
    tokenInput.focus();
  } else {
    const d = describe(res);
    errEl.textContent = `${res.status || ''} ${d.message || d.title}`.trim();
    errEl.hidden = false;
  }
});

// ---- operations list --------------------------------------------------------

const filterEl = $('[data-testid=op-filter]');

function folderOf(name) {
  const i = name.lastIndexOf('/');
  return i < 0 ? '' : name.slice(0, i);
}

function renderList() {
  const q = filterEl.value.trim().toLowerCase();
  const groups = new Map();
  let shown = 0;
  for (const op of state.ops) {
    const roles = roleList(op);
    const hay = `${op.name} ${op.kind} ${roles.join(' ')} ${op.requiresAuthentication ? 'auth lock' : ''} ${op.live ? 'live' : ''}`.toLowerCase();
    if (q && !q.split(/\s+/).every((w) => hay.includes(w))) continue;
    const folder = folderOf(op.name);
    if (!groups.has(folder)) groups.set(folder, []);
    groups.get(folder).push(op);
    shown++;
  }
  const nodes = [];
  for (const [folder, ops] of [...groups].sort((a, b) => a[0].localeCompare(b[0]))) {
    nodes.push(h('li', {class: 'op-group', testid: 'op-group', dataset: {folder}},
      h('p', {class: 'group-name'}, icon('folder'), folder || 'top level'),
      h('ul', {role: 'list'}, ops.map(itemFor))));
  }
  if (!shown) {
    nodes.push(h('li', {class: 'muted op-empty', testid: 'op-empty'},
      state.ops.length ? 'No operation matches the filter.' : 'The gateway serves no operations.'));
  }
  listEl.replaceChildren(...nodes);
  $('[data-testid=op-count]').textContent = q ? `${shown} of ${state.ops.length}` : String(state.ops.length);
}

function roleList(op) {
  const r = op.rbac && typeof op.rbac === 'object' ? op.rbac : {};
  return [...new Set([...(r.requireMatchAll || []), ...(r.requireMatchAny || [])].map(String))];
}

function itemFor(op) {
  const leaf = op.name.slice(op.name.lastIndexOf('/') + 1);
  const roles = roleList(op);
  const current = op.name === state.selected;
  return h('li', null, h('a', {href: `#/${op.name}`, class: `op-item${current ? ' current' : ''}`, testid: 'op-item',
    dataset: {name: op.name, kind: op.kind}, 'aria-current': current ? 'page' : null, title: op.name},
  kindBadge(op),
  h('span', {class: 'op-name'}, leaf),
  op.live ? h('span', {class: 'badge kind-live', title: 'live query'}, 'live') : null,
  roles.length ? h('span', {class: 'roles', testid: 'roles'}, roles.map((r) => h('span', {class: 'role'}, r))) : null,
  op.requiresAuthentication ? h('span', {class: 'lock', testid: 'lock', title: 'requires authentication'},
    icon('lock'), h('span', {class: 'sr-only'}, 'requires authentication')) : null));
}

filterEl.addEventListener('input', renderList);
document.addEventListener('keydown', (e) => {
  const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement.tagName);
  if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey) { e.preventDefault(); filterEl.focus(); }
  if (e.key === 'Escape' && document.activeElement === filterEl && filterEl.value) { filterEl.value = ''; renderList(); }
});
// Arrow keys move between visible operations; Enter on the filter opens the first.
listEl.addEventListener('keydown', (e) => {
  if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp') return;
  const items = [...listEl.querySelectorAll('.op-item')];
  const i = items.indexOf(document.activeElement);
  const next = items[Math.max(0, Math.min(items.length - 1, i + (e.key === 'ArrowDown' ? 1 : -1)))];
  if (next) { next.focus(); e.preventDefault(); }
});
filterEl.addEventListener('keydown', (e) => {
  const first = listEl.querySelector('.op-item');
  if (e.key === 'Enter' && first) { e.preventDefault(); first.click(); }
  if (e.key === 'ArrowDown' && first) { e.preventDefault(); first.focus(); }
});

// ---- panels and routing -----------------------------------------------------------

function select(name) {
  // Unknown or no name: the first operation as the list shows it.
  const first = listEl.querySelector('.op-item');
  const op = state.ops.find((o) => o.name === name) || state.ops.find((o) => first && o.name === first.dataset.name) || state.ops[0];
  if (!op) {
    panelHost.replaceChildren(h('div', {class: 'panel card empty'}, h('p', {class: 'muted'}, 'No operation to show.')));
    return;
  }
  state.selected = op.name;
  let p = state.panels.get(op.name);
  const sig = JSON.stringify(op);
  if (!p || p.sig !== sig) {
    p = {sig, el: buildPanel(op, {addStream})};
    state.panels.set(op.name, p);
  }
  if (panelHost.firstElementChild !== p.el) panelHost.replaceChildren(p.el);
  for (const a of listEl.querySelectorAll('.op-item')) {
    const cur = a.dataset.name === op.name;
    a.classList.toggle('current', cur);
    if (cur) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  document.title = `${op.name} · fireboom`;
}

function routeName() {
  try { return decodeURIComponent(location.hash.replace(/^#\/?/, '')); } catch { return ''; }
}
window.addEventListener('hashchange', () => {
  select(routeName());
  // Move focus to the panel heading when the user picked from the list.
  const t = $('[data-testid=op-title]', panelHost);
  if (t && document.activeElement && document.activeElement.classList.contains('op-item') && window.matchMedia('(max-width: 860px)').matches) {
    t.scrollIntoView({block: 'start'});
  }
});

async function refresh() {
  const errEl = $('[data-testid=load-error]');
  const btn = $('[data-testid=op-refresh]');
  btn.disabled = true;
  try {
    state.ops = await loadOperations();
    errEl.hidden = true;
  } catch (e) {
    const d = e.res ? describe(e.res) : {title: String(e), message: ''};
    errEl.textContent = `Cannot load the operations: ${e.res && e.res.status ? e.res.status + ' ' : ''}${d.message || d.title}`;
    errEl.hidden = false;
  } finally {
    btn.disabled = false;
  }
  renderList();
  select(routeName() || state.selected);
}
$('[data-testid=op-refresh]').addEventListener('click', refresh);

// ---- streams --------------------------------------------------------------

const streams = new Set();
const streamList = $('[data-testid=stream-list]');

function addStream(s) {
  streams.add(s);
  streamList.prepend(s.el);
  streamWatch.observe(s.el, {attributes: true, attributeFilter: ['data-state']});
  $('#streams-section').hidden = false;
  updateStreamCount();
  // Focus stays on the form (another Enter starts another stream); the
  // card's status line is announced (aria-live) and scrolled into view.
  s.el.scrollIntoView({block: 'nearest', behavior: 'smooth'});
}

function updateStreamCount() {
  for (const s of streams) if (!s.el.isConnected) streams.delete(s);
  const running = [...streams].filter((s) => s.running()).length;
  $('[data-testid=stream-count]').textContent = `${running} running${streams.size > running ? `, ${streams.size - running} ended` : ''}`;
  $('[data-testid=stop-all]').disabled = !running;
  $('[data-testid=clear-ended]').disabled = streams.size === running;
  if (!streams.size) $('#streams-section').hidden = true;
}
// Stream cards report their end and removal through DOM changes.
const streamWatch = new MutationObserver(updateStreamCount);
streamWatch.observe(streamList, {childList: true});
$('[data-testid=stop-all]').addEventListener('click', () => streams.forEach((s) => s.stop()));
$('[data-testid=clear-ended]').addEventListener('click', () => {
  for (const s of streams) if (!s.running()) s.el.remove();
});

// ---- start ----------------------------------------------------------------

$('[data-testid=gateway-origin]').textContent = location.host;
(async () => {
  await loadInfo();
  if (info.dev) $('[data-testid=dev-badge]').hidden = false;
  $('[data-testid=mint-box]').hidden = !info.tokenMinting;
  for (const [mode, name] of [['query', info.auth.queryParam], ['cookie', info.auth.cookie]]) {
    for (const el of document.querySelectorAll(`.auth-${mode}-name`)) el.textContent = name || 'off';
    // A way the gateway does not read (auth.cookie is off by default) cannot be chosen.
    const radio = $(`[data-testid=token-transport-${mode}]`);
    radio.disabled = !name;
    radio.closest('label').title = name ? '' : `The gateway does not read tokens from a ${mode === 'query' ? 'query parameter' : 'cookie'} (auth.${mode === 'query' ? 'queryParam' : 'cookie'} is not set).`;
  }
  syncCookie();
  renderToken();
  await refresh();
})();
mountStats($('#stats'));

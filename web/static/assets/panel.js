// panel.js: one panel per operation: header, variables form, run buttons,
// result, and the curl / JavaScript snippets for the current inputs.

import {h, icon, jsonView, copyText} from './dom.js';
import {request, describe, rbacText, onTokenChange} from './api.js';
import {buildForm} from './form.js';
import * as snip from './snippets.js';
import {openStream} from './stream.js';

let panelSeq = 0;

/** kindBadge returns the small coloured kind label. */
export function kindBadge(op) {
  const short = {query: 'query', mutation: 'mutation', subscription: 'sub'}[op.kind] || op.kind;
  return h('span', {class: `badge kind-${op.kind}`, testid: 'kind', title: op.kind}, short);
}

/** buildPanel(op, {addStream}) returns the panel element. */
export function buildPanel(op, {addStream}) {
  const n = ++panelSeq;
  const isSub = op.kind === 'subscription';
  const form = buildForm(op, update);
  const result = h('div', {class: 'result', testid: 'result'});
  const curlPre = h('pre', {class: 'code', testid: 'snippet-curl', tabindex: '0'});
  const jsPre = h('pre', {class: 'code', testid: 'snippet-js', tabindex: '0'});
  let inflight = null;

  // ---- actions ----
  const buttons = [];
  const primary = (label, testid, ic, fn) => h('button', {type: 'button', class: 'btn btn-primary', testid, onclick: fn}, icon(ic), h('span', {class: 'label'}, label));
  const secondary = (label, testid, ic, fn) => h('button', {type: 'button', class: 'btn', testid, onclick: fn}, icon(ic), h('span', {class: 'label'}, label));
  if (isSub) {
    buttons.push(primary('Subscribe', 'subscribe', 'bolt', () => subscribe(false)));
    buttons.push(secondary('Subscribe once', 'once', 'once', () => run('once')));
  } else {
    buttons.push(primary(op.kind === 'mutation' ? 'Run mutation' : 'Run query', 'run', 'play', () => run('run')));
    if (op.live) buttons.push(secondary('Watch live', 'subscribe', 'bolt', () => subscribe(true)));
  }
  const cancelBtn = h('button', {type: 'button', class: 'btn btn-ghost', testid: 'cancel', hidden: true,
    onclick: () => inflight && inflight.abort()}, 'Cancel');
  const actions = h('div', {class: 'actions'}, buttons, cancelBtn,
    h('span', {class: 'kbd-hint muted', title: 'Enter in a field, or Ctrl+Enter anywhere in the form'}, h('kbd', null, 'Enter'), ' runs'));

  // ---- snippets ----
  const tabs = [
    {id: 'curl', label: 'curl', pre: curlPre},
    {id: 'js', label: isSub || op.live ? 'JavaScript (EventSource)' : 'JavaScript (fetch)', pre: jsPre},
  ];
  const tabButtons = tabs.map((t, i) => h('button', {type: 'button', role: 'tab', id: `p${n}-tab-${t.id}`,
    'aria-controls': `p${n}-pane-${t.id}`, 'aria-selected': i === 0 ? 'true' : 'false', tabindex: i === 0 ? '0' : '-1',
    class: 'tab', testid: `tab-${t.id}`, onclick: () => selectTab(i), onkeydown: tabKeys}, t.label));
  const panes = tabs.map((t, i) => h('div', {role: 'tabpanel', id: `p${n}-pane-${t.id}`, 'aria-labelledby': `p${n}-tab-${t.id}`,
    class: 'pane', hidden: i !== 0},
  h('button', {type: 'button', class: 'btn btn-ghost btn-sm copy', testid: `copy-${t.id}`,
    'aria-label': `Copy the ${t.label} snippet`, onclick: (e) => copyText(t.pre.textContent, e.currentTarget, t.pre)},
  icon('copy'), h('span', {class: 'label'}, 'Copy')), t.pre));
  function selectTab(i) {
    tabButtons.forEach((b, j) => { b.setAttribute('aria-selected', String(i === j)); b.tabIndex = i === j ? 0 : -1; });
    panes.forEach((p, j) => { p.hidden = i !== j; });
  }
  function tabKeys(e) {
    const i = tabButtons.indexOf(e.currentTarget);
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
      const j = (i + (e.key === 'ArrowRight' ? 1 : tabs.length - 1)) % tabs.length;
      selectTab(j);
      tabButtons[j].focus();
      e.preventDefault();
    }
  }

  // ---- header ----
  const rbac = op.rbac && typeof op.rbac === 'object' ? rbacText(op.rbac) : '';
  const head = h('header', {class: 'panel-head'},
    h('div', {class: 'panel-title'},
      kindBadge(op),
      op.live ? h('span', {class: 'badge kind-live', title: 'supports wg_live=true'}, 'live') : null,
      h('h2', {class: 'mono', testid: 'op-title', id: `p${n}-title`}, op.name)),
    h('p', {class: 'endpoint mono'}, h('span', {class: 'method'}, op.method || (op.kind === 'mutation' ? 'POST' : 'GET')), ' ', snip.opPath(op)),
    op.requiresAuthentication ? h('p', {class: 'auth-note', testid: 'auth-note'}, icon('lock'),
      rbac ? `Requires a token whose roles satisfy: ${rbac}.` : 'Requires a valid token.') : null);

  const el = h('section', {class: 'panel card', testid: 'op-panel', dataset: {name: op.name}, 'aria-labelledby': `p${n}-title`},
    head,
    h('form', {class: 'vars', novalidate: true, onsubmit: (e) => { e.preventDefault(); buttons[0].click(); },
      // Enter in a field runs (the form has no submit button, so browsers
      // would not submit it implicitly); Ctrl+Enter also works in JSON boxes.
      onkeydown: (e) => {
        if (e.key !== 'Enter' || e.isComposing) return;
        if (e.ctrlKey || e.metaKey || e.target.tagName === 'INPUT') { e.preventDefault(); buttons[0].click(); }
      }},
    h('h3', null, 'Variables'), form.el, actions),
    result,
    h('div', {class: 'snippets'},
      h('div', {class: 'tabs', role: 'tablist', 'aria-label': 'Snippets for the current inputs'}, tabButtons),
      panes));

  function update() {
    const {values} = form.read();
    form.clearErrors();
    curlPre.textContent = snip.curl(op, values, isSub ? 'sse' : 'run');
    jsPre.textContent = isSub || op.live
      ? snip.eventSource(op, values, {live: !isSub})
      : snip.fetchSnippet(op, values);
  }
  onTokenChange(update);
  update();

  function readOrStop() {
    const r = form.read();
    if (r.problems.length) {
      r.problems[0].f.input.focus();
      return null;
    }
    return r.values;
  }

  async function run(mode) {
    update();
    const vars = readOrStop();
    if (!vars) return;
    if (inflight) inflight.abort();
    const ctrl = new AbortController();
    inflight = ctrl;
    buttons.forEach((b) => { b.disabled = true; });
    cancelBtn.hidden = false;
    el.setAttribute('aria-busy', 'true');
    result.replaceChildren(h('p', {class: 'muted', testid: 'result-pending'},
      mode === 'once' ? 'Waiting for the first event…' : 'Running…'));
    const res = op.method === 'POST'
      ? await request('POST', snip.opPath(op), vars, {signal: ctrl.signal})
      : await request('GET', snip.url(op, vars, {once: mode === 'once'}), undefined, {signal: ctrl.signal});
    if (inflight === ctrl) inflight = null;
    buttons.forEach((b) => { b.disabled = false; });
    cancelBtn.hidden = true;
    el.removeAttribute('aria-busy');
    showResult(res, mode);
  }

  function showResult(res, mode) {
    const ok = res.ok;
    const status = h('span', {class: `status ${ok ? 'ok' : 'bad'}`, testid: 'result-status'},
      res.status ? `${res.status} ${res.statusText || ''}`.trim() : 'no answer');
    const meta = h('div', {class: 'result-meta'}, status,
      h('span', {class: 'muted', testid: 'result-time'}, `${Math.round(res.ms)} ms`),
      res.size != null ? h('span', {class: 'muted'}, res.size < 1024 ? `${res.size} B` : `${(res.size / 1024).toFixed(1)} KiB`) : null);
    const parts = [meta];
    if (!ok) {
      const d = describe(res, op);
      const rest = d.status === 400 ? form.showErrors(d.fields) : d.fields;
      parts.push(h('div', {class: 'alert', testid: 'error-message', role: 'alert', dataset: {status: String(d.status), code: d.code}},
        h('strong', null, `${d.status ? d.status + ' ' : ''}${d.title}`),
        d.message ? h('p', null, d.code ? `${d.code}: ${d.message}` : d.message) : null,
        rest.length ? h('ul', null, rest.map((f) => h('li', null, h('code', null, f.path), ' ', f.message))) : null,
        d.hint ? h('p', {class: 'muted'}, d.hint) : null));
      if (res.body !== undefined && res.body !== '') {
        parts.push(h('details', {class: 'raw'}, h('summary', null, 'Response body'), jsonView(res.body, 'result-body')));
      }
    } else if (res.status === 204) {
      parts.push(h('p', {class: 'muted', testid: 'result-empty'},
        mode === 'once' ? 'The stream ended without a result (204).' : 'No content (204).'));
    } else {
      const b = res.body;
      if (b && typeof b === 'object' && Array.isArray(b.errors) && b.errors.length) {
        parts.push(h('p', {class: 'alert alert-warn', testid: 'graphql-errors'},
          `The upstream answered with ${b.errors.length} GraphQL error${b.errors.length > 1 ? 's' : ''}: ${String(b.errors[0] && b.errors[0].message || '')}`));
      }
      parts.push(jsonView(b, 'result-body'));
    }
    result.replaceChildren(...parts);
  }

  function subscribe(live) {
    update();
    const vars = readOrStop();
    if (!vars) return;
    // The variables as the stream's subtitle: from: 3 · room: "lobby".
    const label = Object.entries(vars).map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join(' · ');
    const url = snip.url(op, vars, {sse: true, live, withToken: true});
    addStream(openStream({op, url, live, label}));
  }

  return el;
}

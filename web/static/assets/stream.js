// stream.js: one EventSource stream shown as a card with its events,
// counter, rate and end. Cards live in the Streams area, side by side.

import {h, icon, jsonView, clock} from './dom.js';
import {probe, describe} from './api.js';

const MAX_EVENTS = 500; // events kept in the DOM per stream
const RATE_WINDOW = 5000; // ms over which events/s is averaged

/** States (data-state on the card and its stream-status element). */
const STATUS = {
  connecting: 'Connecting…',
  open: 'Open, waiting for events',
  streaming: 'Streaming',
  reconnecting: 'Connection lost, reconnecting (resumes after the last id)…',
  done: 'Done: the upstream completed',
  error: 'Ended with an error',
  failed: 'Refused',
  stopped: 'Stopped',
};

/**
 * openStream({op, url, label, live, onEnd}) starts an EventSource on the
 * same-origin url and returns {el, stop(), running()}.
 */
export function openStream({op, url, label, live = false, onEnd}) {
  let es = null;
  let count = 0;
  let state = '';
  let opened = false;
  let ended = false;
  let hadError = false;
  let reconnects = 0;
  const started = performance.now();
  const stamps = [];

  const statusEl = h('p', {class: 'stream-status', testid: 'stream-status', role: 'status', 'aria-live': 'polite'});
  const countEl = h('span', {class: 'num', testid: 'event-count'}, '0');
  const rateEl = h('span', {class: 'num', testid: 'event-rate'}, '0.0');
  const elapsedEl = h('span', {class: 'num', testid: 'stream-elapsed'}, '0.0s');
  const errorEl = h('div', {class: 'alert', testid: 'error-message', role: 'alert', hidden: true});
  const list = h('ol', {class: 'events', testid: 'events', 'aria-label': `Events of ${op.name}`});
  const empty = h('p', {class: 'events-empty muted'}, 'No events yet.');
  const stopBtn = h('button', {type: 'button', class: 'btn btn-danger btn-sm', testid: 'stop', onclick: () => stop()},
    icon('stop'), h('span', {class: 'label'}, 'Stop'));
  const closeBtn = h('button', {type: 'button', class: 'btn btn-ghost btn-sm', testid: 'stream-close', hidden: true,
    'aria-label': `Remove the ${op.name} stream`, onclick: () => el.remove()}, icon('x'));

  const el = h('article', {class: 'stream card', testid: 'stream', dataset: {name: op.name, state: 'connecting'},
    'aria-label': `Stream ${op.name}`},
  h('header', {class: 'stream-head'},
    h('div', {class: 'stream-title'},
      h('span', {class: `badge kind-${live ? 'live' : op.kind}`}, live ? 'live' : 'sub'),
      h('strong', {class: 'mono'}, op.name)),
    h('div', {class: 'stream-actions'}, stopBtn, closeBtn)),
  label ? h('p', {class: 'stream-vars mono', testid: 'stream-vars', title: label}, label) : null,
  h('div', {class: 'stream-meta'},
    h('span', {class: 'dot', 'aria-hidden': 'true'}), statusEl),
  h('dl', {class: 'stream-figures'},
    h('div', null, h('dt', null, 'events'), h('dd', null, countEl)),
    h('div', null, h('dt', null, 'per second'), h('dd', null, rateEl)),
    h('div', null, h('dt', null, 'elapsed'), h('dd', null, elapsedEl))),
  errorEl, empty, list);

  const ticker = setInterval(tick, 500);

  function tick() {
    const now = performance.now();
    while (stamps.length && now - stamps[0] > RATE_WINDOW) stamps.shift();
    const span = Math.min(RATE_WINDOW, now - started) / 1000;
    rateEl.textContent = span > 0.25 ? (stamps.length / span).toFixed(1) : '0.0';
    const secs = (now - started) / 1000;
    const s = Math.floor(secs);
    elapsedEl.textContent = secs < 10 ? `${secs.toFixed(1)}s` : s < 60 ? `${s}s` : `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  }

  function setState(next, detail) {
    state = next;
    el.dataset.state = next;
    statusEl.textContent = STATUS[next] + (detail ? `: ${detail}` : '');
  }

  function end(next, detail) {
    if (ended) return;
    ended = true;
    if (es) es.close();
    tick();
    clearInterval(ticker);
    setState(next, detail);
    stopBtn.hidden = true;
    closeBtn.hidden = false;
    if (onEnd) onEnd();
  }

  function showError(d) {
    // replaceChildren would turn null into the text "null": filter first.
    errorEl.replaceChildren(...[
      h('strong', null, `${d.status ? d.status + ' ' : ''}${d.title}`),
      d.message ? h('p', null, d.code ? `${d.code}: ${d.message}` : d.message) : null,
      d.fields.length ? h('ul', null, d.fields.map((f) => h('li', null, h('code', null, f.path), ' ', f.message))) : null,
      d.hint ? h('p', {class: 'muted'}, d.hint) : null,
    ].filter(Boolean));
    errorEl.dataset.status = String(d.status);
    errorEl.dataset.code = d.code || '';
    errorEl.hidden = false;
  }

  function add(li) {
    empty.hidden = true;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 32;
    list.append(li);
    while (list.childElementCount > MAX_EVENTS) list.firstElementChild.remove();
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  function onMessage(e) {
    count++;
    stamps.push(performance.now());
    countEl.textContent = String(count);
    if (state !== 'streaming' && !hadError) setState('streaming');
    let data = e.data;
    let isError = false;
    try {
      data = JSON.parse(e.data);
      isError = data && typeof data === 'object' && Array.isArray(data.errors) && data.data === undefined;
    } catch { /* not JSON: show the text */ }
    add(h('li', {class: `event${isError ? ' event-error' : ''}`, testid: 'event', dataset: {id: e.lastEventId || ''}},
      h('div', {class: 'event-head'},
        h('time', {class: 'mono'}, clock()),
        e.lastEventId ? h('span', {class: 'event-id mono', title: 'event id'}, `id ${e.lastEventId}`) : null,
        isError ? h('span', {class: 'badge badge-error'}, 'errors') : null),
      jsonView(data, undefined, {compact: 320})));
    if (isError) {
      hadError = true;
      const first = data.errors[0] || {};
      const code = first.extensions && first.extensions.code;
      setState('error', `${code ? code + ': ' : ''}${first.message || 'error'}`);
    }
  }

  function onGap(e) {
    let d = {};
    try { d = JSON.parse(e.data) || {}; } catch { /* ignore */ }
    add(h('li', {class: 'event event-gap', testid: 'gap'},
      h('div', {class: 'event-head'}, h('time', {class: 'mono'}, clock()), h('span', {class: 'badge badge-warn'}, 'gap')),
      h('p', null, `Missed ${Number.isFinite(d.missed) ? d.missed : 'some'} events` +
        (d.reason ? ` (${d.reason})` : '') + '.')));
  }

  function onDone() {
    add(h('li', {class: 'event event-end', testid: 'event-done'}, h('time', {class: 'mono'}, clock()), ' done'));
    if (hadError) end('error', statusEl.textContent.replace(STATUS.error + ': ', ''));
    else end('done');
  }

  async function onError() {
    if (ended) return;
    if (es.readyState === EventSource.CONNECTING) {
      // The browser retries by itself, sending Last-Event-ID.
      reconnects++;
      setState(opened ? 'reconnecting' : 'connecting', reconnects > 1 ? `attempt ${reconnects}` : '');
      return;
    }
    // CLOSED: the gateway answered with a non-200 status or a wrong
    // content type. EventSource cannot tell which: ask with fetch.
    es.close();
    setState('connecting', 'checking why the stream was refused');
    const p = await probe(url);
    if (ended) return;
    if (p.ok) {
      showError({status: p.status, title: 'The stream closed before it started', code: '', fields: [],
        message: `The gateway now answers ${p.status} with Content-Type ${p.contentType || 'none'}.`, hint: 'Try again.'});
      end('failed', 'connection closed');
      return;
    }
    const d = describe(p, op);
    showError(d);
    end('failed', d.status ? `${d.status} ${d.title}` : d.title);
  }

  function stop() {
    end('stopped');
  }

  setState('connecting');
  es = new EventSource(url);
  es.addEventListener('open', () => {
    if (opened) {
      add(h('li', {class: 'event event-note', testid: 'reconnected'}, h('time', {class: 'mono'}, clock()),
        ` reconnected${count ? ', resuming after the last event id' : ''}`));
    }
    opened = true;
    reconnects = 0;
    if (!hadError) setState(count ? 'streaming' : 'open');
  });
  es.addEventListener('message', onMessage);
  es.addEventListener('gap', onGap);
  es.addEventListener('done', onDone);
  // A server-sent "event: error" would arrive here as a MessageEvent; the
  // connection's own error is a plain Event.
  es.addEventListener('error', (e) => (e instanceof MessageEvent ? onMessage(e) : onError()));

  return {el, stop, running: () => !ended};
}

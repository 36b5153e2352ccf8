// stats.js: the gateway panel. GET /_/stats is an SSE stream, one event a
// second: {"openStreams","upstreamConnections","upstreamSubscriptions",
// "eventsIn","eventsOut","time"}, and in a cluster "cluster":
// {"connected","available","topicsOwned"}; the events are totals since start, so
// per-second rates are computed here from consecutive samples. On shutdown
// the gateway ends the stream with a retry hint and no done: the browser
// reconnects by itself, to the next instance behind the balancer.

import {h, svg} from './dom.js';

const POINTS = 60; // one minute of samples
const W = 120;
const H = 32;

const METRICS = [
  {key: 'openStreams', label: 'Open streams', id: 'open-streams'},
  {key: 'upstreamConnections', label: 'Upstream conns', title: 'Upstream WebSocket connections', id: 'upstream-connections'},
  {key: 'upstreamSubscriptions', label: 'Upstream subs', title: 'Upstream subscriptions (shared by clients)', id: 'upstream-subscriptions'},
  {key: 'eventsIn', label: 'Events in /s', id: 'events-in', rate: true},
  {key: 'eventsOut', label: 'Events out /s', id: 'events-out', rate: true},
];

/** mountStats(container) fills the gateway panel and keeps it live. */
export function mountStats(container) {
  const status = h('span', {class: 'stats-status', testid: 'stats-status', role: 'status', 'aria-live': 'polite'}, 'connecting…');
  const cards = METRICS.map((m) => {
    const value = h('span', {class: 'stat-value num', testid: `stats-${m.id}`}, '–');
    const line = svg('polyline', {class: 'spark-line', points: ''});
    const area = svg('path', {class: 'spark-area', d: ''});
    const chart = svg('svg', {class: 'spark', viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none',
      role: 'img', 'aria-label': `${m.title || m.label}, last minute`, testid: `stats-${m.id}-chart`}, area, line);
    const card = h('div', {class: `stat stat-${m.id}`, testid: 'stats-card'},
      h('span', {class: 'stat-label', title: m.title || m.label}, m.label), value, chart);
    return {m, value, line, area, chart, card, series: []};
  });
  // In a cluster: this instance's NATS connection and the topics it runs.
  const cluster = h('span', {class: 'stats-cluster', testid: 'stats-cluster', hidden: ''}, '');
  container.replaceChildren(
    h('div', {class: 'section-head'}, h('h2', {id: 'stats-h'}, 'Gateway'), cluster, status),
    h('div', {class: 'stats-grid', testid: 'stats'}, cards.map((c) => c.card)));

  let prev = null;
  let es = null;
  let retry = null;

  function draw(c) {
    const s = c.series;
    const max = Math.max(1, ...s.filter((v) => v != null));
    // Fill from the left for the first samples, then scroll a one-minute window.
    const x = (i) => (W * i) / (Math.max(s.length, 10) - 1);
    const y = (v) => H - 2 - ((H - 4) * v) / max;
    const pts = s.map((v, i) => (v == null ? null : [x(i), y(v)])).filter(Boolean);
    c.line.setAttribute('points', pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' '));
    c.area.setAttribute('d', pts.length > 1
      ? `M${pts[0][0].toFixed(1)},${H} ` + pts.map(([a, b]) => `L${a.toFixed(1)},${b.toFixed(1)}`).join(' ') + ` L${pts[pts.length - 1][0].toFixed(1)},${H} Z`
      : '');
    c.chart.setAttribute('aria-label', `${c.m.title || c.m.label}, last minute, peak ${Math.round(max)}`);
  }

  function sample(d) {
    const t = Date.parse(d.time);
    const arrived = performance.now();
    // Seconds between this sample and the previous one: the gateway's
    // clock when it looks sane, else the time between arrivals (an older
    // gateway stamped whole seconds, so two ticks could share one).
    let dt = 0;
    if (prev) {
      const byServer = Number.isFinite(t) && Number.isFinite(prev.t) ? (t - prev.t) / 1000 : NaN;
      dt = byServer >= 0.5 && byServer <= 30 ? byServer : Math.max(0.25, (arrived - prev.arrived) / 1000);
    }
    for (const c of cards) {
      const raw = Number(d[c.m.key]);
      let v = Number.isFinite(raw) ? raw : null;
      if (c.m.rate) {
        const p = prev && Number(prev.d[c.m.key]);
        // A total that went down means the gateway restarted: no rate for that second.
        v = prev && v != null && Number.isFinite(p) && v >= p ? (v - p) / dt : null;
      }
      c.series.push(v);
      if (c.series.length > POINTS) c.series.shift();
      c.value.textContent = v == null ? '–' : c.m.rate ? (v < 10 ? v.toFixed(1) : String(Math.round(v))) : String(v);
      draw(c);
    }
    prev = {t, arrived, d};
    const cl = d.cluster;
    if (cl && typeof cl === 'object') {
      cluster.hidden = false;
      cluster.dataset.state = cl.connected ? 'live' : 'off';
      cluster.textContent = `cluster: ${cl.connected ? 'NATS connected' : 'NATS disconnected'} · ${Number(cl.topicsOwned) || 0} topics owned here`;
    } else {
      cluster.hidden = true;
    }
  }

  function connect() {
    clearTimeout(retry);
    es = new EventSource('/_/stats');
    es.addEventListener('open', () => { status.textContent = 'live'; status.dataset.state = 'live'; });
    es.addEventListener('message', (e) => {
      try {
        const d = JSON.parse(e.data);
        if (d && typeof d === 'object') sample(d);
      } catch { /* skip a malformed sample */ }
    });
    es.addEventListener('error', () => {
      if (es.readyState === EventSource.CLOSED) {
        // Refused (404 on a gateway without stats, or restarting): try again later.
        status.textContent = 'unavailable, retrying';
        status.dataset.state = 'off';
        es.close();
        prev = null;
        retry = setTimeout(connect, 5000);
      } else {
        // The connection dropped (a gateway restart ends it so): the
        // browser reconnects, possibly to another instance whose totals
        // differ, so no rate is computed across it.
        status.textContent = 'reconnecting…';
        status.dataset.state = 'off';
        prev = null;
      }
    });
  }
  connect();
}

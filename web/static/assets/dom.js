// dom.js: a tiny DOM builder. It never parses HTML: every string becomes a
// text node or an attribute value, so operation names, variables and event
// data from the network cannot inject markup (the page's CSP also enforces
// Trusted Types, which makes any innerHTML assignment throw).

/**
 * h('button', {class: 'btn', testid: 'run', onclick: fn}, 'Run')
 * Props: class, testid, dataset {}, on<event> listeners, DOM properties for
 * non-string values (checked, disabled, hidden, value...), attributes otherwise.
 */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  setProps(el, props);
  append(el, children);
  return el;
}

const SVGNS = 'http://www.w3.org/2000/svg';

/** svg('path', {d: 'M0 0'}) creates an SVG element with attributes. */
export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'testid') el.dataset.testid = v;
    else el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

function setProps(el, props) {
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'testid') el.dataset.testid = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (typeof v !== 'string' && k in el) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** $('[data-testid=x]') inside root (document by default). */
export const $ = (sel, root = document) => root.querySelector(sel);

/** Small inline icons, drawn with DOM calls (no markup strings). */
const ICONS = {
  lock: ['M7 11V8a5 5 0 0 1 10 0v3', 'M5 11h14v10H5z'],
  copy: ['M9 9h11v11H9z', 'M5 15H4V4h11v1'],
  play: ['M7 4l13 8-13 8z'],
  stop: ['M6 6h12v12H6z'],
  bolt: ['M13 2L4 14h7l-1 8 9-12h-7z'],
  refresh: ['M20 11a8 8 0 1 0-2.3 5.7', 'M20 4v7h-7'],
  sun: ['M12 7a5 5 0 1 0 0 10 5 5 0 0 0 0-10z', 'M12 1v2M12 21v2M4.2 4.2l1.4 1.4M18.4 18.4l1.4 1.4M1 12h2M21 12h2M4.2 19.8l1.4-1.4M18.4 5.6l1.4-1.4'],
  moon: ['M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z'],
  auto: ['M12 3a9 9 0 1 0 0 18z', 'M12 3a9 9 0 1 1 0 18 9 9 0 0 1 0-18z'],
  eye: ['M1 12s4-7 11-7 11 7 11 7-4 7-11 7S1 12 1 12z', 'M12 9a3 3 0 1 0 0 6 3 3 0 0 0 0-6z'],
  x: ['M6 6l12 12M18 6L6 18'],
  once: ['M12 5v14M5 12h14'],
  folder: ['M3 6h6l2 2h10v11H3z'],
};

/** icon('lock') returns an aria-hidden SVG icon. */
export function icon(name, cls = 'icon') {
  return svg('svg', {class: cls, viewBox: '0 0 24 24', 'aria-hidden': 'true', focusable: 'false'},
    (ICONS[name] || []).map((d) => svg('path', {d})));
}

/** Pretty JSON with syntax colouring, built from text nodes and spans. */
export function jsonView(value, testid, {compact = 0} = {}) {
  let text = typeof value === 'string' ? value : JSON.stringify(value);
  // Short values stay on one line (like a log); longer ones are indented.
  if (typeof value !== 'string' && text != null && text.length > compact) text = JSON.stringify(value, null, 2);
  const pre = h('pre', {class: 'json', testid, tabindex: '0'});
  if (text == null) return pre;
  if (text.length > 200_000) { pre.textContent = text; return pre; }
  const re = /("(?:\\.|[^"\\])*")(\s*:)?|\b(true|false|null)\b|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) pre.append(text.slice(last, m.index));
    const cls = m[1] ? (m[2] ? 'k' : 's') : m[3] ? (m[3] === 'null' ? 'z' : 'b') : 'n';
    pre.append(h('span', {class: 'j-' + cls}, m[1] || m[0]));
    if (m[2]) pre.append(m[2]);
    last = m.index + m[0].length;
  }
  if (last < text.length) pre.append(text.slice(last));
  return pre;
}

/** HH:MM:SS.mmm in local time. */
export function clock(d = new Date()) {
  const p = (n, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

/** Copy text to the clipboard; falls back to selecting the given element. */
export async function copyText(text, button, selectEl) {
  let ok = false;
  try {
    await navigator.clipboard.writeText(text);
    ok = true;
  } catch {
    if (selectEl) {
      const r = document.createRange();
      r.selectNodeContents(selectEl);
      const s = getSelection();
      s.removeAllRanges();
      s.addRange(r);
    }
  }
  if (button) {
    const label = button.querySelector('.label') || button;
    const before = label.textContent;
    label.textContent = ok ? 'Copied' : 'Selected: press Ctrl+C';
    setTimeout(() => { label.textContent = before; }, 1500);
  }
}

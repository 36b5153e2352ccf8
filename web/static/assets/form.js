// form.js: a form generated from an operation's variables JSON Schema.
//
// Field kinds: enum -> <select>, boolean -> checkbox (indeterminate = not
// set when optional without default), integer/number -> number input,
// string -> text input, arrays and input objects -> JSON <textarea>.
// Empty fields are left out so the gateway applies declared defaults.

import {h} from './dom.js';

let seq = 0;

/** resolve follows local $ref pointers ("#/$defs/X", "#/definitions/X"). */
function resolve(schema, root, depth = 0) {
  if (!schema || typeof schema !== 'object') return {};
  if (typeof schema.$ref === 'string' && schema.$ref.startsWith('#/') && depth < 32) {
    let target = root;
    for (const raw of schema.$ref.slice(2).split('/')) {
      const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
      target = target && typeof target === 'object' ? target[key] : undefined;
    }
    const {$ref, ...rest} = schema;
    const name = $ref.split('/').pop();
    return {title: name, ...resolve(target, root, depth + 1), ...rest};
  }
  // anyOf/oneOf [X, {type: "null"}] is a nullable X.
  for (const k of ['anyOf', 'oneOf']) {
    if (Array.isArray(schema[k])) {
      const nonNull = schema[k].filter((s) => !(s && s.type === 'null'));
      if (nonNull.length === 1) {
        const {[k]: _, ...rest} = schema;
        const r = resolve(nonNull[0], root, depth + 1);
        return {...r, ...rest, nullable: nonNull.length < schema[k].length || r.nullable};
      }
    }
  }
  return schema;
}

/** typeOf returns {type, nullable} with type one of string|integer|number|boolean|array|object|any. */
function typeOf(s) {
  const types = Array.isArray(s.type) ? s.type : s.type ? [s.type] : [];
  const main = types.find((t) => t !== 'null');
  let type = main || (s.properties ? 'object' : s.items ? 'array' : 'any');
  if (!main && Array.isArray(s.enum)) type = 'string';
  return {type, nullable: types.includes('null') || s.nullable === true};
}

/** label text for a type, GraphQL-like: String, Int, [Message], MessageInput. */
function typeLabel(s, root, depth = 0) {
  const r = resolve(s, root);
  const {type} = typeOf(r);
  if (type === 'array') return depth > 4 ? '[…]' : `[${typeLabel(r.items || {}, root, depth + 1)}]`;
  if (r.title && (type === 'object' || Array.isArray(r.enum))) return r.title;
  return {string: 'String', integer: 'Int', number: 'Float', boolean: 'Boolean', object: 'Object', any: 'JSON'}[type];
}

/** example builds a skeleton value for JSON placeholders. */
function example(s, root, depth = 0) {
  const r = resolve(s, root);
  if (r.default !== undefined) return r.default;
  if (Array.isArray(r.enum) && r.enum.length) return r.enum.find((v) => v !== null) ?? null;
  const {type} = typeOf(r);
  if (depth > 3) return type === 'array' ? [] : type === 'object' ? {} : null;
  switch (type) {
    case 'array': return [example(r.items || {}, root, depth + 1)];
    case 'object': {
      const o = {};
      const props = r.properties || {};
      const req = new Set(r.required || []);
      const keys = Object.keys(props);
      const pick = keys.filter((k) => req.has(k));
      for (const k of (pick.length ? pick : keys.slice(0, 3))) o[k] = example(props[k], root, depth + 1);
      return o;
    }
    case 'integer': case 'number': return 0;
    case 'boolean': return false;
    case 'string': return '';
    default: return null;
  }
}

/**
 * buildForm(op, onChange) returns
 * {el, read() -> {values, problems}, showErrors(fields), clearErrors(), isEmpty}.
 */
export function buildForm(op, onChange) {
  const root = op.variables && typeof op.variables === 'object' ? op.variables : {};
  const schema = resolve(root, root);
  const props = schema.properties && typeof schema.properties === 'object' ? schema.properties : {};
  const required = new Set(Array.isArray(schema.required) ? schema.required : []);
  const fields = [];
  const form = h('div', {class: 'fields', testid: 'variables'});

  // Required variables first, each group in the operation's declared order
  // (the gateway's schema keeps it).
  const entries = Object.entries(props);
  const ordered = [...entries.filter(([n]) => required.has(n)), ...entries.filter(([n]) => !required.has(n))];
  for (const [name, raw] of ordered) {
    const s = resolve(raw, root);
    const {type} = typeOf(s);
    const id = `v${++seq}`;
    const req = required.has(name);
    const hasDefault = s.default !== undefined;
    const enumVals = Array.isArray(s.enum) ? s.enum.filter((v) => v !== null) : null;
    let input;
    let kind;
    if (enumVals && enumVals.length) {
      kind = 'enum';
      input = h('select', {id, name},
        h('option', {value: ''}, req && !hasDefault ? '— choose —' : '— not set —'),
        enumVals.map((v) => h('option', {value: JSON.stringify(v)}, String(v))));
      if (hasDefault) input.value = JSON.stringify(s.default);
    } else if (type === 'boolean') {
      kind = 'boolean';
      input = h('input', {id, name, type: 'checkbox'});
      if (hasDefault) input.checked = s.default === true;
      else input.indeterminate = !req;
    } else if (type === 'integer' || type === 'number') {
      kind = type;
      input = h('input', {id, name, type: 'number', step: type === 'integer' ? '1' : 'any', inputmode: type === 'integer' ? 'numeric' : 'decimal'});
      if (hasDefault && s.default !== null) input.value = String(s.default);
    } else if (type === 'string') {
      kind = 'string';
      input = h('input', {id, name, type: 'text', autocomplete: 'off', spellcheck: 'false'});
      if (hasDefault && s.default !== null) input.value = String(s.default);
    } else {
      kind = 'json';
      input = h('textarea', {id, name, rows: '3', spellcheck: 'false', class: 'mono',
        placeholder: JSON.stringify(example(s, root))});
      if (hasDefault) input.value = JSON.stringify(s.default);
    }
    const err = h('p', {class: 'field-error', id: `${id}-err`, testid: 'field-error', hidden: true});
    const hints = [];
    if (s.description) hints.push(String(s.description));
    if (hasDefault) hints.push(`default ${JSON.stringify(s.default)}`);
    if (kind === 'json') hints.push('JSON');
    if (kind === 'boolean' && !req && !hasDefault) hints.push('dash = not set');
    const hintEl = hints.length ? h('p', {class: 'hint', id: `${id}-hint`}, hints.join(' · ')) : null;
    input.setAttribute('aria-describedby', [hintEl && `${id}-hint`, `${id}-err`].filter(Boolean).join(' '));
    if (req) input.setAttribute('aria-required', 'true');
    input.dataset.testid = 'var-input';
    input.dataset.var = name;
    const label = h('label', {for: id},
      h('span', {class: 'var-name'}, name),
      h('span', {class: 'var-type'}, typeLabel(s, root) + (req ? '!' : '')),
      req ? h('span', {class: 'req', title: 'required'}, 'required') : null);
    const row = h('div', {class: `field field-${kind}`, testid: 'field', dataset: {var: name}},
      kind === 'boolean' ? h('div', {class: 'check'}, input, label) : [label, input], hintEl, err);
    input.addEventListener('input', () => { setError(f, ''); if (onChange) onChange(); });
    input.addEventListener('change', () => { if (onChange) onChange(); });
    const f = {name, kind, input, err, row};
    fields.push(f);
    form.append(row);
  }
  if (!fields.length) form.append(h('p', {class: 'muted', testid: 'no-variables'}, 'This operation takes no variables.'));

  function setError(f, msg) {
    f.err.textContent = msg;
    f.err.hidden = !msg;
    f.row.classList.toggle('invalid', !!msg);
    if (msg) f.input.setAttribute('aria-invalid', 'true'); else f.input.removeAttribute('aria-invalid');
  }

  function read() {
    const values = {};
    const problems = [];
    for (const f of fields) {
      const {input, kind, name} = f;
      switch (kind) {
        case 'boolean':
          // A click clears indeterminate: from then on the box is set.
          if (!input.indeterminate) values[name] = input.checked;
          break;
        case 'enum':
          if (input.value !== '') values[name] = JSON.parse(input.value);
          break;
        case 'integer': case 'number':
          if (input.validity.badInput) problems.push({f, message: 'not a number'});
          else if (input.value !== '') values[name] = Number(input.value);
          break;
        case 'string':
          if (input.value !== '') values[name] = input.value;
          break;
        default:
          if (input.value.trim() !== '') {
            try { values[name] = JSON.parse(input.value); } catch (e) {
              problems.push({f, message: `not valid JSON: ${e.message}`});
            }
          }
      }
    }
    for (const f of fields) setError(f, '');
    for (const p of problems) setError(p.f, p.message);
    return {values, problems};
  }

  /** showErrors marks fields named by the gateway's propertyPath ("/first", "/input/text"). */
  function showErrors(list) {
    const rest = [];
    for (const e of list) {
      const top = decodeURIComponent(String(e.path).split('/')[1] || '').replace(/~1/g, '/').replace(/~0/g, '~');
      const f = fields.find((x) => x.name === top);
      if (f) setError(f, e.message + (e.path.split('/').length > 2 ? ` (at ${e.path})` : ''));
      else rest.push(e);
    }
    const first = fields.find((f) => !f.err.hidden);
    if (first) first.input.focus();
    return rest;
  }

  function clearErrors() { for (const f of fields) setError(f, ''); }

  return {el: form, read, showErrors, clearErrors, isEmpty: fields.length === 0};
}

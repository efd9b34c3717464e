// A form generated from a flow type's JSON Schema (GET /plugins: config_schema): one labelled
// field per property (text, number, a select for enums and booleans, one-per-line lists for
// arrays of scalars, JSON for the rest), required marks, descriptions and constraints as hints,
// and a slot under each field for the problems the server reports at its path.
import {h} from './dom.js';

const safe = name => name.replace(/[^A-Za-z0-9_-]/g, '_');
const SCALARS = ['string', 'integer', 'number', 'boolean'];

function kindOf(prop) {
  if (Array.isArray(prop.enum)) return 'enum';
  const t = Array.isArray(prop.type) ? prop.type.filter(x => x !== 'null') : [prop.type];
  if (t.length !== 1) return 'json';
  if (SCALARS.includes(t[0])) return t[0];
  if (t[0] === 'array' && prop.items && SCALARS.includes(prop.items.type) && prop.items.type !== 'boolean') {
    return 'list';
  }
  return 'json';
}

function hintText(prop, kind) {
  const parts = [];
  const t = kind === 'list' ? `list of ${prop.items.type}s, one per line`
    : kind === 'json' ? `${[].concat(prop.type || 'value').join(' or ')}, as JSON`
      : kind === 'enum' ? 'one of the listed values' : prop.type;
  parts.push(t);
  const lo = prop.minimum ?? prop.items?.minimum;
  const hi = prop.maximum ?? prop.items?.maximum;
  if (lo !== undefined && hi !== undefined) parts.push(`${lo} to ${hi}`);
  else if (lo !== undefined) parts.push(`at least ${lo}`);
  else if (hi !== undefined) parts.push(`at most ${hi}`);
  if (prop.minLength !== undefined || prop.maxLength !== undefined) {
    parts.push(`${prop.minLength ?? 0} to ${prop.maxLength ?? '∞'} characters`);
  }
  if (prop.default !== undefined) parts.push(`default ${JSON.stringify(prop.default)}`);
  return parts.join('; ');
}

/**
 * configForm(schema, onChange) -> {el, set(config), problems(list), fieldFor(path)}
 * onChange(fn) is called with a function that applies the edit to a config object.
 */
export function configForm(schema, onChange) {
  const props = (schema && typeof schema.properties === 'object') ? schema.properties : {};
  const required = new Set(Array.isArray(schema?.required) ? schema.required : []);
  const fields = new Map(); // name -> {input, kind, error, prop}
  const el = h('div', {class: 'schema-fields', 'data-testid': 'config-fields'});
  if (schema && schema.description) el.append(h('p', {class: 'muted', text: schema.description}));
  const names = Object.keys(props);
  if (!names.length) {
    el.append(h('p', {class: 'muted', 'data-testid': 'no-fields',
                      text: 'This flow type declares no settings. Anything else goes in the JSON editor.'}));
  }
  for (const name of names) {
    const prop = props[name] || {};
    const kind = kindOf(prop);
    const id = `cfg-${safe(name)}`;
    const hintId = `${id}-hint`;
    const errId = `${id}-error`;
    const common = {id, name, 'data-testid': `field-${name}`, 'aria-describedby': `${hintId} ${errId}`,
                    required: required.has(name), 'aria-required': required.has(name) ? 'true' : null};
    let input;
    if (kind === 'enum' || kind === 'boolean') {
      const values = kind === 'enum' ? prop.enum : [true, false];
      input = h('select', common, h('option', {value: '', text: '— not set —'}),
        values.map(v => h('option', {value: JSON.stringify(v), text: typeof v === 'string' ? v : JSON.stringify(v)})));
    } else if (kind === 'integer' || kind === 'number') {
      input = h('input', {...common, type: 'number', step: kind === 'integer' ? '1' : 'any',
                          min: prop.minimum, max: prop.maximum, inputmode: kind === 'integer' ? 'numeric' : 'decimal',
                          placeholder: prop.default !== undefined ? String(prop.default) : null});
    } else if (kind === 'string') {
      input = h('input', {...common, type: 'text', maxlength: prop.maxLength, autocomplete: 'off',
                          placeholder: prop.default !== undefined ? String(prop.default) : null});
    } else {
      input = h('textarea', {...common, rows: kind === 'list' ? '3' : '4', spellcheck: 'false', class: 'mono'});
    }
    const error = h('p', {class: 'field-error', id: errId, 'data-testid': `error-${name}`, 'aria-live': 'polite'});
    fields.set(name, {input, kind, error, prop});
    el.append(h('div', {class: 'field', dataset: {path: `/config/${name}`}},
      h('label', {for: id}, prop.title || name,
        required.has(name) ? h('span', {class: 'req', title: 'required', 'aria-hidden': 'true', text: ' *'}) : null,
        required.has(name) ? h('span', {class: 'sr-only', text: ' (required)'}) : null),
      input,
      h('p', {class: 'hint', id: hintId},
        prop.description ? h('span', {text: `${prop.description}. `}) : null,
        h('span', {class: 'muted', text: hintText(prop, kind)})),
      error));
    const handler = () => {
      const parsed = parse(input, kind, prop);
      error.textContent = parsed.error || '';
      input.setAttribute('aria-invalid', parsed.error ? 'true' : 'false');
      if (parsed.error) return;
      onChange(config => {
        if (parsed.absent) delete config[name]; else config[name] = parsed.value;
      });
    };
    input.addEventListener(input.tagName === 'SELECT' ? 'change' : 'input', handler);
  }

  return {
    el,
    /** Shows config's values in the fields (a field being typed in is left alone). */
    set(config) {
      for (const [name, f] of fields) {
        if (document.activeElement === f.input) continue;
        f.input.value = show(config?.[name], f.kind);
        f.error.textContent = '';
        f.input.removeAttribute('aria-invalid');
      }
    },
    /** The field error slot for a JSON pointer under /config, or null. */
    errorSlot(path) {
      const m = /^\/config\/([^/]+)/.exec(path || '');
      const name = m && m[1].replace(/~1/g, '/').replace(/~0/g, '~');
      const f = name !== null && fields.get(name);
      return f ? f : null;
    },
    names: () => [...fields.keys()],
  };
}

function show(v, kind) {
  if (v === undefined) return '';
  if (kind === 'enum' || kind === 'boolean') return JSON.stringify(v);
  if (kind === 'list' && Array.isArray(v) && v.every(x => typeof x !== 'object')) return v.join('\n');
  if (kind === 'json' || kind === 'list') return JSON.stringify(v, null, 2);
  if (kind === 'string' && typeof v !== 'string') return JSON.stringify(v);
  return String(v);
}

function parse(input, kind, prop) {
  const raw = input.value;
  if (kind === 'enum' || kind === 'boolean') return raw === '' ? {absent: true} : {value: JSON.parse(raw)};
  if (kind === 'integer' || kind === 'number') {
    if (input.validity && input.validity.badInput) return {error: 'not a number'};
    if (raw.trim() === '') return {absent: true};
    const n = Number(raw);
    if (!Number.isFinite(n)) return {error: 'not a number'};
    return {value: n};
  }
  if (kind === 'string') return raw === '' ? {absent: true} : {value: raw};
  if (raw.trim() === '') return {absent: true};
  if (kind === 'list') {
    const items = raw.split('\n').map(s => s.trim()).filter(s => s !== '');
    if (prop.items.type === 'string') return {value: items};
    const nums = items.map(Number);
    const bad = items.find((s, i) => !Number.isFinite(nums[i]));
    return bad !== undefined ? {error: `"${bad}" is not a number`} : {value: nums};
  }
  try {
    return {value: JSON.parse(raw)};
  } catch (e) {
    return {error: `not valid JSON: ${e.message}`};
  }
}

// Create (#/new) and edit (#/edit/ID) a configuration: a form generated from the flow type's
// schema beside a raw JSON editor, both kept in sync; POST /flows/validate before saving; PUT
// with If-Match so that two editors of one flow get a conflict (412), explained in plain words.
import {h, fill, loading, flash} from './dom.js';
import {get, request, enc, can, errorBox, ApiError} from './api.js';
import {configForm} from './schemaform.js';
import {confirmDialog} from './dialog.js';
import {loadPlugins, typeCatalog, resolveType} from './plugins.js';

/**
 * Whether a problem of POST /flows/validate is the server saying that the flow id is taken:
 * Engine::existingProblems (core/engine/engine.cpp) words it "flow_id 'ID' already exists", at
 * the path /flow_id. When editing a flow that problem is expected (the flow is there) and is
 * not one. The only place that knows this wording: change it here if the server's changes.
 */
export function isIdTaken(problem, id) {
  return problem?.path === '/flow_id' && problem.message === `flow_id '${id}' already exists`;
}

export function editView(root, {id}) {
  const editing = id !== undefined;
  if (!can('editor')) {
    fill(root, h('section', {id: 'edit-view'}, h('h1', {text: editing ? `Edit ${id}` : 'New flow'}),
      h('p', {class: 'error-box', role: 'alert', 'data-testid': 'role-refused',
              text: 'Your role cannot change configurations: that needs the role editor.'})));
    return null;
  }
  let alive = true;
  fill(root, loading(editing ? `Loading ${id}…` : 'Loading the flow types…'));
  Promise.all([loadPlugins(), editing ? get(`/flows/${enc(id)}`) : null]).then(([plugins, flow]) => {
    if (alive) buildEditor(root, {id, editing, catalog: typeCatalog(plugins), flow});
  }).catch(e => {
    if (alive) fill(root, errorBox(e, {title: editing ? `The flow ${id} could not be read` : 'The flow types could not be read'}));
  });
  return () => { alive = false; };
}

function buildEditor(root, {id, editing, catalog, flow}) {
  let doc = editing ? flow.body : {flow_id: '', type: catalog.has('noop') ? 'noop' : ([...catalog.keys()][0] || 'noop'), config: {}};
  let etag = editing ? flow.etag : null;
  let form = null;      // the generated config fields
  let formKey = '';     // the type + version they were generated for

  const flowIdIn = h('input', {type: 'text', id: 'field-flow_id', name: 'flow_id', 'data-testid': 'field-flow_id',
                               required: true, 'aria-required': 'true', readonly: editing, autocomplete: 'off',
                               pattern: '[A-Za-z0-9][A-Za-z0-9._-]{0,127}', 'aria-describedby': 'flow_id-hint flow_id-error'});
  const nameIn = h('input', {type: 'text', id: 'field-name', name: 'name', 'data-testid': 'field-name',
                             autocomplete: 'off', 'aria-describedby': 'name-error'});
  const typeSel = h('select', {id: 'field-type', name: 'type', 'data-testid': 'field-type', 'aria-describedby': 'type-hint type-error'});
  const versionSel = h('select', {id: 'field-version', name: 'version', 'data-testid': 'field-version'});
  const typeHint = h('p', {class: 'hint', id: 'type-hint'});
  const configBox = h('fieldset', {id: 'config-fieldset'});
  const raw = h('textarea', {id: 'raw-json', 'data-testid': 'raw-json', class: 'mono', spellcheck: 'false',
                             rows: '24', 'aria-describedby': 'raw-error'});
  const rawError = h('p', {id: 'raw-error', class: 'field-error', role: 'alert', 'data-testid': 'raw-error'});
  const problemsEl = h('div', {id: 'edit-problems', 'data-testid': 'edit-problems', 'aria-live': 'polite'});
  const conflictEl = h('div', {id: 'conflict', 'data-testid': 'conflict'});
  const validateBtn = h('button', {type: 'button', id: 'validate', 'data-testid': 'validate', text: 'Validate'});
  const saveBtn = h('button', {type: 'submit', id: 'save', 'data-testid': 'save', class: 'primary',
                               text: editing ? 'Save' : 'Create'});
  const topErrors = {flow_id: h('p', {class: 'field-error', id: 'flow_id-error', 'aria-live': 'polite'}),
                     name: h('p', {class: 'field-error', id: 'name-error', 'aria-live': 'polite'}),
                     type: h('p', {class: 'field-error', id: 'type-error', 'aria-live': 'polite'})};

  for (const name of [...catalog.keys()].sort()) typeSel.append(h('option', {value: name, text: name}));

  const formEl = h('form', {id: 'flow-form', novalidate: true, 'aria-label': 'Configuration form'},
    h('fieldset', {}, h('legend', {text: 'Flow'}),
      h('div', {class: 'field'}, h('label', {for: 'field-flow_id'}, 'Flow id',
          h('span', {class: 'req', 'aria-hidden': 'true', text: ' *'}), h('span', {class: 'sr-only', text: ' (required)'})),
        flowIdIn,
        h('p', {class: 'hint', id: 'flow_id-hint', text: editing ? 'The id of a flow cannot change.'
          : '1 to 128 letters, digits, ".", "_" or "-", starting with a letter or digit.'}), topErrors.flow_id),
      h('div', {class: 'field'}, h('label', {for: 'field-name', text: 'Name'}), nameIn, topErrors.name),
      h('div', {class: 'field-row'},
        h('div', {class: 'field'}, h('label', {for: 'field-type', text: 'Flow type'}), typeSel),
        h('div', {class: 'field'}, h('label', {for: 'field-version', text: 'Version'}), versionSel)),
      typeHint, topErrors.type),
    configBox,
    h('p', {class: 'muted', text: 'Runtime settings (timeouts, restart, schedule, after) and any other ' +
                                   'member: in the JSON editor.'}));

  const page = h('section', {id: 'edit-view', 'aria-labelledby': 'edit-title'},
    h('div', {class: 'view-head'},
      h('h1', {id: 'edit-title', text: editing ? `Edit flow ${id}` : 'New flow'}),
      editing ? h('a', {href: `#/flows/${enc(id)}`, text: 'Back to the flow'}) : h('a', {href: '#/flows', text: 'Back to the flows'})),
    conflictEl,
    h('div', {class: 'edit-grid'},
      formEl,
      h('div', {class: 'raw'},
        h('label', {for: 'raw-json', text: 'The configuration as JSON (kept in sync with the form)'}),
        raw, rawError)),
    problemsEl,
    h('div', {class: 'buttons'}, validateBtn, saveBtn,
      editing ? h('button', {type: 'button', id: 'delete-flow', 'data-testid': 'delete-flow', class: 'danger-outline',
                             text: 'Delete…', onclick: () => deleteFlow()}) : null));
  saveBtn.setAttribute('form', 'flow-form');
  fill(root, page);

  // ---- keeping the form, the JSON and `doc` in sync

  function typeParts() {
    const t = typeof doc.type === 'string' ? doc.type : 'noop';
    const at = t.indexOf('@');
    return at < 0 ? {name: t, pin: ''} : {name: t.slice(0, at), pin: t.slice(at + 1)};
  }

  function syncTypeControls() {
    const {name, pin} = typeParts();
    if (![...typeSel.options].some(o => o.value === name)) {
      typeSel.append(h('option', {value: name, text: `${name} (not loaded)`}));
    }
    typeSel.value = name;
    const versions = catalog.get(name) || [];
    fill(versionSel, h('option', {value: '', text: versions.length ? `newest (${versions[0].version})` : 'newest'}),
      versions.map(v => h('option', {value: v.version, text: v.version + (v.retired ? ' (retired)' : '')})));
    if (pin && ![...versionSel.options].some(o => o.value === pin)) {
      const r = resolveType(catalog, `${name}@${pin}`);
      versionSel.append(h('option', {value: pin, text: `${pin} (${r.entry ? r.entry.version : 'not loaded'})`}));
    }
    versionSel.value = pin;
    const r = resolveType(catalog, doc.type ?? 'noop');
    typeHint.textContent = r.entry ? (r.entry.description || '')
      : `No loaded plugin provides ${doc.type}: the settings can only be edited as JSON.`;
    const key = r.entry ? `${r.entry.name}@${r.entry.version}` : `?${doc.type}`;
    if (key !== formKey) {
      formKey = key;
      form = r.entry ? configForm(r.entry.config_schema || {}, edit => {
        const config = (doc.config && typeof doc.config === 'object' && !Array.isArray(doc.config)) ? {...doc.config} : {};
        edit(config);
        update({...doc, config}, 'form');
      }) : null;
      fill(configBox, h('legend', {text: r.entry ? `Settings of ${r.entry.name} ${r.entry.version}` : 'Settings'}),
        form ? form.el : h('p', {class: 'muted', text: 'Edit the "config" member in the JSON editor.'}));
    }
  }

  function syncForm() {
    if (document.activeElement !== flowIdIn) flowIdIn.value = typeof doc.flow_id === 'string' ? doc.flow_id : '';
    if (document.activeElement !== nameIn) {
      nameIn.value = doc.name === undefined ? '' : typeof doc.name === 'string' ? doc.name : JSON.stringify(doc.name);
    }
    syncTypeControls();
    form?.set(doc.config);
  }

  /** source: 'form' (leave the form), 'raw' (leave the textarea), or '' (both). */
  function update(next, source = '') {
    doc = next;
    if (source !== 'raw') {
      raw.value = JSON.stringify(doc, null, 2);
      rawError.textContent = '';
      raw.removeAttribute('aria-invalid');
    }
    if (source !== 'form') syncForm();
    else syncTypeControls();
    saveBtn.disabled = validateBtn.disabled = false;
  }

  flowIdIn.addEventListener('input', () => update({...doc, flow_id: flowIdIn.value}, 'form'));
  nameIn.addEventListener('input', () => {
    const next = {...doc};
    if (nameIn.value === '') delete next.name; else next.name = nameIn.value;
    update(next, 'form');
  });
  typeSel.addEventListener('change', () => {
    // another type: keep only the settings the new type declares
    const props = resolveType(catalog, typeSel.value).entry?.config_schema?.properties || {};
    const old = doc.config && typeof doc.config === 'object' && !Array.isArray(doc.config) ? doc.config : {};
    const config = Object.fromEntries(Object.entries(old).filter(([k]) => k in props));
    update({...doc, type: typeSel.value, config}, 'form');
    form?.set(config);
  });
  versionSel.addEventListener('change', () => {
    update({...doc, type: versionSel.value ? `${typeSel.value}@${versionSel.value}` : typeSel.value}, 'form');
  });
  raw.addEventListener('input', () => {
    let parsed;
    try {
      parsed = JSON.parse(raw.value);
    } catch (e) {
      rawError.textContent = `Not valid JSON: ${e.message}. The form shows the last valid version.`;
      raw.setAttribute('aria-invalid', 'true');
      saveBtn.disabled = validateBtn.disabled = true;
      return;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      rawError.textContent = 'A configuration is a JSON object ({...}).';
      raw.setAttribute('aria-invalid', 'true');
      saveBtn.disabled = validateBtn.disabled = true;
      return;
    }
    rawError.textContent = '';
    raw.removeAttribute('aria-invalid');
    update(parsed, 'raw');
  });

  // ---- problems, by path

  function clearProblems() {
    fill(problemsEl);
    for (const e of Object.values(topErrors)) e.textContent = '';
    for (const el of formEl.querySelectorAll('.field-error')) el.textContent = '';
    for (const el of formEl.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  }

  /** Shows each problem next to its field (when there is one) and all of them in a list. */
  function showProblems(err, title) {
    clearProblems();
    for (const p of err.details) {
      const path = p.path || '';
      const top = /^\/(flow_id|name|type)$/.exec(path);
      const slot = top ? {error: topErrors[top[1]], input: {flow_id: flowIdIn, name: nameIn, type: typeSel}[top[1]]}
        : form?.errorSlot(path);
      if (slot) {
        slot.error.textContent = (slot.error.textContent ? slot.error.textContent + ' ' : '') + p.message;
        slot.input.setAttribute('aria-invalid', 'true');
      }
    }
    fill(problemsEl, errorBox(err, {title, testid: 'problems'}));
    const first = formEl.querySelector('[aria-invalid="true"]');
    if (first) first.focus(); else problemsEl.scrollIntoView({block: 'nearest'});
  }

  /** The required settings of the type's schema that the configuration lacks. */
  function missingRequired() {
    const r = resolveType(catalog, doc.type ?? 'noop');
    const req = Array.isArray(r.entry?.config_schema?.required) ? r.entry.config_schema.required : [];
    const config = doc.config && typeof doc.config === 'object' ? doc.config : {};
    return req.filter(k => !(k in config)).map(k => ({path: `/config/${k}`, message: `${k} is required`}));
  }

  /**
   * POST /flows/validate; true when the server finds no problem (for an edit, "the id is taken"
   * is expected). The required settings the browser sees missing are shown too, as hints, but
   * the server's answer alone decides.
   */
  async function validate(quietWhenValid) {
    clearProblems();
    const hints = missingRequired();
    const r = await request('POST', '/flows/validate', {body: [doc]});
    const server = (r.body.details || []).filter(p => !(editing && isIdTaken(p, id)));
    const valid = server.length === 0;
    // a hint the server also makes is shown once, in the server's words
    const extra = hints.filter(hint => !server.some(p => p.path === hint.path))
      .map(hint => ({...hint, message: `${hint.message} (noticed in the browser)`}));
    const details = [...server, ...extra];
    if (details.length) {
      const n = details.length === 1 ? 'a problem' : `${details.length} problems`;
      const error = valid
        ? `The server accepts the configuration, but the browser noticed ${n}.`
        : `The configuration has ${n}; nothing was saved.`;
      showProblems(new ApiError(null, {error, details}), 'Validation');
    } else if (!quietWhenValid) {
      fill(problemsEl, h('p', {class: 'result ok', 'data-testid': 'valid', role: 'status', text: 'The configuration is valid.'}));
    }
    return valid;
  }

  async function guarded(button, fn) {
    button.disabled = true;
    try { await fn(); } catch (e) {
      if (e instanceof ApiError) showProblems(e, 'The server refused it'); else throw e;
    } finally { button.disabled = false; }
  }

  validateBtn.addEventListener('click', () => guarded(validateBtn, () => validate(false)));
  formEl.addEventListener('submit', e => { e.preventDefault(); guarded(saveBtn, save); });

  async function save(overwrite = false) {
    fill(conflictEl);
    if (!(await validate(true))) return;   // an overwrite after a 412 is validated again too
    if (!editing) {
      await request('POST', '/flows', {body: [doc]});
      flash(`Created flow ${doc.flow_id}.`);
      location.hash = `#/flows/${enc(doc.flow_id)}`;
      return;
    }
    try {
      const r = await request('PUT', `/flows/${enc(id)}`, {body: doc, headers: {'If-Match': etag}});
      etag = r.etag || etag;
      flash(`Saved flow ${id}.`);
      location.hash = `#/flows/${enc(id)}`;
    } catch (e) {
      if (e.status === 412) return conflict(e);
      throw e;
    }
  }

  /** 412: someone else saved (or deleted) the flow since it was opened here. */
  async function conflict(err) {
    clearProblems();
    let theirs = null;
    try { theirs = await get(`/flows/${enc(id)}`); } catch (e) { if (e.status !== 404) throw e; }
    const reload = h('button', {type: 'button', id: 'conflict-reload', 'data-testid': 'conflict-reload', class: 'primary',
      text: theirs ? 'Reload their version' : 'Back to the flows',
      onclick: () => {
        if (!theirs) { location.hash = '#/flows'; return; }
        etag = theirs.etag;
        fill(conflictEl);
        update(theirs.body);
        fill(problemsEl, h('p', {class: 'result ok', role: 'status', text: 'Reloaded: the form shows the version saved now.'}));
      }});
    const overwrite = theirs && h('button', {type: 'button', id: 'conflict-overwrite', 'data-testid': 'conflict-overwrite',
      class: 'danger-outline', text: 'Overwrite with my version',
      onclick: () => { etag = theirs.etag; guarded(overwrite, () => save(true)); }});
    fill(conflictEl, h('div', {class: 'conflict', role: 'alert', 'data-testid': 'conflict-box'},
      h('h2', {text: 'This flow was changed by someone else'}),
      h('p', {'data-testid': 'conflict-text', text: theirs
        ? 'Someone else changed this flow since you opened it, so your version was not saved. ' +
          'Reload to see their version (your changes here are lost), or overwrite their version with yours.'
        : 'Someone else deleted this flow since you opened it, so your version was not saved.'}),
      h('p', {class: 'muted', text: `The server said: ${err.message}`}),
      theirs ? h('details', {}, h('summary', {text: 'Their version'}),
        h('pre', {class: 'mono', text: JSON.stringify(theirs.body, null, 2)})) : null,
      h('div', {class: 'buttons'}, reload, overwrite)));
    reload.focus();
  }

  async function deleteFlow() {
    const force = h('input', {type: 'checkbox', id: 'delete-force'});
    const yes = await confirmDialog({
      title: `Delete flow ${id}?`,
      body: h('p', {text: 'Its configuration and its log are removed; a running flow is stopped first.'}),
      extra: h('p', {}, force, ' ', h('label', {for: 'delete-force', text: 'even if other flows wait for it (runtime.after)'})),
      confirmLabel: 'Delete', danger: true,
    });
    if (!yes) return;
    try {
      await request('DELETE', `/flows/${enc(id)}${force.checked ? '?force=true' : ''}`, {headers: {'If-Match': etag}});
      flash(`Deleted flow ${id}.`);
      location.hash = '#/flows';
    } catch (e) {
      if (e.status === 412) return conflict(e);
      showProblems(e, 'The flow was not deleted');
    }
  }

  update(doc);
  (editing ? nameIn : flowIdIn).focus();
}

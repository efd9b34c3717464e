// GET /plugins: the plugins with their flow types, versions, schemas and refusals (#/plugins),
// and the type catalog the editor builds its forms from. Admins can reload the plugins.
import {h, fill, loading, plural} from './dom.js';
import {get, request, can, errorBox} from './api.js';

export async function loadPlugins() {
  return (await get('/plugins')).body;
}

function compareVersions(a, b) {
  const pa = String(a).split('.').map(Number);
  const pb = String(b).split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] || 0) - (pb[i] || 0);
    if (d) return d;
  }
  return 0;
}

/** Map type name -> [{name, version, description, config_schema, flows, plugin, retired}], newest first. */
export function typeCatalog(doc) {
  const cat = new Map();
  for (const p of doc.plugins || []) {
    for (const t of p.flow_types || []) {
      if (!cat.has(t.name)) cat.set(t.name, []);
      cat.get(t.name).push({...t, plugin: p.name, file: p.file, retired: !!p.retired});
    }
  }
  for (const list of cat.values()) list.sort((a, b) => compareVersions(b.version, a.version));
  return cat;
}

/** "ticker", "ticker@1", "ticker@1.2.0" -> {name, pin, entry: the version it resolves to, or null}. */
export function resolveType(catalog, type) {
  const t = String(type || 'noop');
  const at = t.indexOf('@');
  const name = at < 0 ? t : t.slice(0, at);
  const pin = at < 0 ? '' : t.slice(at + 1);
  const list = catalog.get(name) || [];
  const live = list.filter(e => !e.retired);
  const match = e => !pin || e.version === pin || e.version.startsWith(`${pin}.`);
  const entry = live.find(match) || list.find(match) || null;
  return {name, pin, entry};
}

export function pluginsView(root) {
  let alive = true;
  const result = h('div', {id: 'reload-result', 'aria-live': 'polite'});
  const content = h('div', {}, loading('Loading the plugins…'));
  const reload = can('admin') && h('button', {type: 'button', id: 'reload-plugins', 'data-testid': 'reload-plugins',
    text: 'Reload plugins', onclick: async () => {
      reload.disabled = true;
      fill(result, h('p', {class: 'pending', text: 'Rescanning the plugin directories…'}));
      try {
        const r = (await request('POST', '/plugins/reload')).body;
        fill(result, h('div', {class: r.refused.length ? 'result warn' : 'result ok', 'data-testid': 'reload-done'},
          h('strong', {text: r.status}),
          ` — loaded ${r.loaded.length ? r.loaded.join(', ') : 'nothing new'}; removed ${r.removed.length ? r.removed.join(', ') : 'nothing'}; ` +
          `${r.unchanged} unchanged; ${plural(r.refused.length, 'refusal')}.`));
        show();
      } catch (e) {
        fill(result, errorBox(e, {title: 'The plugins were not reloaded'}));
      } finally { reload.disabled = false; }
    }});
  fill(root, h('section', {id: 'plugins-view', 'aria-labelledby': 'plugins-title'},
    h('div', {class: 'view-head'}, h('h1', {id: 'plugins-title', text: 'Plugins'}), reload || null),
    result, content));

  async function show() {
    let doc;
    try { doc = await loadPlugins(); } catch (e) {
      if (alive) fill(content, errorBox(e, {title: 'The plugins could not be read'}));
      return;
    }
    if (!alive) return;
    const refused = doc.refused || [];
    fill(content,
      refused.length ? h('section', {class: 'error-box', 'data-testid': 'refused', 'aria-labelledby': 'refused-title'},
        h('h2', {id: 'refused-title', text: `Refused files (${refused.length})`}),
        h('ul', {}, refused.map(r => h('li', {}, h('code', {text: r.file}), `: ${r.reason}`))))
        : h('p', {class: 'muted', 'data-testid': 'refused-none', text: 'No plugin file was refused.'}),
      h('h2', {text: 'Versions of each flow type'}),
      h('table', {class: 'compact', 'data-testid': 'versions'},
        h('thead', {}, h('tr', {}, h('th', {scope: 'col', text: 'Flow type'}), h('th', {scope: 'col', text: 'Versions, newest first'}))),
        h('tbody', {}, Object.entries(doc.versions || {}).map(([t, vs]) =>
          h('tr', {}, h('th', {scope: 'row', text: t}), h('td', {text: vs.join(', ')}))))),
      (doc.plugins || []).map(p => h('article', {class: 'card', 'data-testid': 'plugin', dataset: {plugin: p.name}},
        h('h2', {}, `${p.name} `, h('span', {class: 'muted', text: p.version}),
          p.retired ? h('span', {class: 'state state-stopped', text: 'retired'}) : null),
        h('p', {class: 'muted'}, h('code', {text: p.file}), ` · ABI ${p.abi}`),
        h('table', {class: 'compact'},
          h('thead', {}, h('tr', {}, ['Flow type', 'Version', 'Flows', 'Description', 'Settings schema']
            .map(c => h('th', {scope: 'col', text: c})))),
          h('tbody', {}, (p.flow_types || []).map(t => h('tr', {dataset: {type: t.name}},
            h('th', {scope: 'row', text: t.name}), h('td', {text: t.version}),
            h('td', {class: 'num', title: Array.isArray(t.flows) ? t.flows.join(', ') : null,
                     text: String(Array.isArray(t.flows) ? t.flows.length : (t.flows ?? 0))}),
            h('td', {text: t.description || ''}),
            h('td', {}, h('details', {}, h('summary', {text: 'schema'}),
              h('pre', {class: 'mono schema', text: JSON.stringify(t.config_schema ?? null, null, 2)}))))))))));
  }
  show();
  return () => { alive = false; };
}

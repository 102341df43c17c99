// The Mosaic dashboard: one page per hash route (#/, #/item/KEY, #/user/KEY, #/model, #/health) over
// the server's JSON API. Everything from the server is added as text (never as HTML): names and titles
// come from catalogues and clients. Writes send the bearer token kept in this tab's sessionStorage.
'use strict';

const SVG = 'http://www.w3.org/2000/svg';
const TOKEN_KEY = 'mosaic.token';

// ---- building the page ----------------------------------------------------------------------

// el('li', {class: 'x', onclick: f}, child, 'text', ...): an element with attributes and children.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  return fill(node, attrs, children);
}
function svg(tag, attrs, ...children) {
  return fill(document.createElementNS(SVG, tag), attrs, children);
}
function fill(node, attrs, children) {
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
function page(...children) {
  const main = document.getElementById('page');
  main.replaceChildren(...children);
  return main;
}
function card(title, ...children) {
  return el('section', {class: 'card'}, title ? el('h2', {}, title) : null, ...children);
}
function nameOf(node) { return node.label || node.key || `${node.kind} ${node.id}`; }
function itemLink(node) { return el('a', {href: '#/item/' + encodeURIComponent(node.key)}, nameOf(node)); }
function userLink(node) { return el('a', {href: '#/user/' + encodeURIComponent(node.key)}, node.label || node.key); }
function number(x, digits = 2) { return typeof x === 'number' ? x.toFixed(digits) : '–'; }

function showError(message) {
  const banner = document.getElementById('error-banner');
  banner.textContent = message;
  banner.hidden = !message;
}

// ---- the API ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message, field) { super(message); this.status = status; this.field = field; }
}

async function getJson(path) {
  const res = await fetch(path, {headers: {Accept: 'application/json'}});
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body.error || res.statusText, body.field);
  return body;
}

// POSTs JSON with the tab's token; a 401 opens the token banner and throws.
async function postJson(path, body) {
  const headers = {'Content-Type': 'application/json'};
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.Authorization = 'Bearer ' + token;
  const res = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body)});
  const reply = await res.json().catch(() => ({}));
  const message = reply.error || res.statusText;
  if (res.status === 401) {
    askForToken(`401 Unauthorized: ${message}. Nothing was written. Enter the server's token to write from this tab.`);
    throw new ApiError(401, message);
  }
  if (!res.ok) throw new ApiError(res.status, message, reply.field);
  document.getElementById('auth-banner').hidden = true;
  return reply;
}

function askForToken(message) {
  document.getElementById('auth-message').textContent = message;
  document.getElementById('auth-banner').hidden = false;
  document.getElementById('token').focus();
}

document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('auth-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const token = document.getElementById('token').value.trim();
    if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
    document.getElementById('auth-message').textContent = token
      ? 'Token kept for this tab: try again.' : 'Token cleared.';
  });
  document.getElementById('user-jump').addEventListener('submit', (event) => {
    event.preventDefault();
    const key = document.getElementById('user-jump-key').value.trim();
    if (key) location.hash = '#/user/' + encodeURIComponent(key);
  });
  window.addEventListener('hashchange', route);
  route();
});

// ---- routing ----------------------------------------------------------------------------------

let leavePage = null;  // stops the current page's timers

async function route() {
  if (leavePage) { leavePage(); leavePage = null; }
  showError('');
  const hash = location.hash.replace(/^#/, '') || '/';
  const [path, query] = hash.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const pageName = parts[0] || 'catalogue';
  for (const a of document.querySelectorAll('header nav a')) a.classList.toggle('active', a.dataset.page === pageName);
  document.body.dataset.page = pageName;
  try {
    if (pageName === 'item' && parts[1]) await itemPage(parts[1]);
    else if (pageName === 'user' && parts[1]) await userPage(parts[1]);
    else if (pageName === 'model') await modelPage();
    else if (pageName === 'health') await healthPage();
    else await cataloguePage(new URLSearchParams(query || ''));
  } catch (e) {
    showError(e.status ? `${e.status}: ${e.message}` : String(e));
  }
  document.body.dataset.ready = pageName;
  refreshStatus();
}

async function refreshStatus() {
  try {
    const h = await getJson('/health');
    document.getElementById('server-status').textContent =
      h.model_version ? `model v${h.model_version} · ${h.items} items · ${h.users} users` : 'no model yet';
  } catch (e) {
    document.getElementById('server-status').textContent = 'server unreachable';
  }
}

// ---- catalogue --------------------------------------------------------------------------------

async function cataloguePage(params) {
  const q = params.get('q') || '';
  const kind = params.get('kind') || '';
  const input = el('input', {type: 'search', id: 'search', name: 'q', value: q, placeholder: 'title, artist, genre, or any words',
                             'aria-label': 'search the catalogue'});
  const kindSelect = el('select', {id: 'kind', 'aria-label': 'kind'},
    el('option', {value: ''}, 'video and music'), el('option', {value: 'video'}, 'video'), el('option', {value: 'music'}, 'music'));
  kindSelect.value = kind;
  const form = el('form', {class: 'search', onsubmit: (event) => {
    event.preventDefault();
    const next = new URLSearchParams();
    if (input.value.trim()) next.set('q', input.value.trim());
    if (kindSelect.value) next.set('kind', kindSelect.value);
    location.hash = '#/catalogue?' + next.toString();
  }}, input, kindSelect, el('button', {id: 'search-go'}, 'Search'));
  const list = el('ol', {class: 'results', id: 'catalogue-results'});
  const summary = el('p', {class: 'muted'});
  page(el('h1', {}, 'Catalogue'), form, card(null, summary, list));
  const search = new URLSearchParams({limit: '50'});
  if (q) search.set('q', q);
  if (kind) search.set('kind', kind);
  const result = await getJson('/catalogue?' + search.toString());
  summary.textContent = q
    ? `${result.total} exact match${result.total === 1 ? '' : 'es'} for “${q}”` + (result.items.length > result.total ? ', then the nearest by text' : '')
    : `${result.total} items, newest first`;
  for (const item of result.items) {
    const why = item.match === 'title' ? 'title' : item.match === 'linked' ? `linked to ${item.via}`
      : `text similarity ${number(item.similarity)}`;
    list.append(el('li', {'data-key': item.key}, itemLink(item), item.item_kind ? el('span', {class: 'tag'}, item.item_kind) : null,
                   el('span', {class: 'muted'}, ' · ' + why)));
  }
  if (!result.items.length) list.append(el('li', {class: 'muted'}, 'nothing found'));
  input.focus();
}

// ---- item -------------------------------------------------------------------------------------

function featureSummary(attributes) {
  const rows = [];
  const analysis = attributes.analysis || {};
  if (attributes.duration_s !== undefined) rows.push(['duration', `${number(attributes.duration_s, 1)} s (${attributes.container || ''})`]);
  if (attributes.video) rows.push(['video', `${attributes.video.codec} ${attributes.video.width}×${attributes.video.height}, ${number(attributes.video.fps, 2)} fps`]);
  if (attributes.audio) rows.push(['audio', `${attributes.audio.codec} ${attributes.audio.sample_rate} Hz, ${attributes.audio.channels} ch`]);
  if (analysis.visual) {
    const v = analysis.visual;
    rows.push(['colour', `brightness ${number(v.brightness)}, colourfulness ${number(v.colourfulness, 1)}`]);
    rows.push(['motion', `${number(v.motion, 3)} (${v.cuts} cuts, ${number(v.cut_rate_per_min, 1)}/min over ${v.samples} frames)`]);
  }
  if (analysis.audio) {
    const a = analysis.audio;
    rows.push(['tempo', a.tempo_confidence > 0 ? `${number(a.tempo_bpm, 1)} BPM (confidence ${number(a.tempo_confidence)})` : 'no steady beat']);
    rows.push(['loudness', `${number(a.rms_db, 1)} dBFS, silence ${number(100 * a.silence_ratio, 0)}%`]);
    rows.push(['brightness', `spectral centroid ${number(a.spectral_centroid_hz, 0)} Hz, ${number(a.onset_rate)} onsets/s`]);
  }
  return rows;
}

function metaList(rows) {
  return el('dl', {class: 'meta'}, rows.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
}

async function itemPage(key) {
  const data = await getJson('/item?item=' + encodeURIComponent(key) + '&k=8');
  const item = data.item, a = data.attributes || {};
  const about = [];
  if (a.kind) about.push(['kind', a.kind]);
  if (a.description) about.push(['description', a.description]);
  if (a.year) about.push(['year', a.year]);
  const byRelation = {};
  for (const link of data.links) (byRelation[link.relation] = byRelation[link.relation] || []).push(nameOf(link.node));
  for (const [relation, names] of Object.entries(byRelation)) about.push([relation, names.join(', ')]);
  about.push(['key', item.key]);

  const features = featureSummary(a);
  for (const [name, f] of Object.entries(data.features)) features.push([`${name} vector`, `${f.extractor} v${f.version}, ${f.dims} dims`]);

  const placed = data.placement
    ? `model v${data.placement.model_version} placed it ${data.placement.by === 'rebuild' ? 'after training (it arrived during the rebuild)' : 'when it was added'}, from its content and KG neighbours`
    : data.model_version ? `trained with model v${data.model_version}` : 'no model yet';
  const explored = metaList([
    ['placement', placed],
    ['listeners', `${data.interacting_users} users have played it`],
    ['shown', `${data.exposure.impressions} times (POST /impressions)`],
    ['played', `${data.exposure.plays} times through the server`],
    ['play rate', data.exposure.impressions ? number(data.exposure.plays / data.exposure.impressions, 3) : '–'],
  ]);

  const audience = el('ol', {class: 'results', id: 'audience'});
  for (const hit of data.audience || []) {
    audience.append(el('li', {'data-key': hit.key}, userLink(hit), el('span', {class: 'muted'}, ` score ${number(hit.score)}`),
                       el('button', {class: 'small play-as', onclick: () => { playUser.value = hit.key; }}, 'play as'),
                       el('ul', {class: 'reasons'}, (hit.explain || []).map((r) => el('li', {}, r)))));
  }
  if (!data.audience) audience.append(el('li', {class: 'muted'}, 'no model yet: run mosaic rebuild'));
  const similar = el('ol', {class: 'results', id: 'similar'});
  for (const hit of data.similar || []) {
    similar.append(el('li', {}, itemLink(hit), hit.placed ? el('span', {class: 'tag new'}, 'new') : null,
                      el('span', {class: 'muted'}, ` cosine ${number(hit.score)}`)));
  }

  const playUser = el('input', {id: 'play-user', placeholder: 'user id', value: (data.audience && data.audience[0] && data.audience[0].key) || ''});
  const playResult = el('div', {id: 'play-result'});
  const playForm = el('form', {id: 'play-form', class: 'search', onsubmit: async (event) => {
    event.preventDefault();
    await playAndCompare(playUser.value.trim(), item.key, playResult);
  }}, el('label', {}, 'Play this for user ', playUser), el('button', {id: 'play'}, '▶ Play'));

  const graphBox = el('div', {id: 'kg'});
  page(el('h1', {id: 'item-title'}, nameOf(item), a.kind ? el('span', {class: 'tag'}, a.kind) : null,
          data.placement ? el('span', {class: 'tag new'}, 'placed') : null),
       el('div', {class: 'grid'},
          card('About', metaList(about)),
          card('Features', metaList(features)),
          card('Placement and exploration', explored),
          el('section', {class: 'card wide'}, el('h2', {}, 'Knowledge graph'),
             el('p', {class: 'muted'}, 'Click an entity to walk there, an item to open it.'), graphBox),
          card('Audience', el('p', {class: 'muted'}, 'The users most likely to enjoy it, and the paths that weighed most.'), audience),
          card('Similar items', similar),
          card('Play', playForm, playResult)));
  drawGraph(graphBox, data.graph);
}

// Posts one play of `itemKey` by `user` and shows their list (seen items left out) before and after.
async function playAndCompare(user, itemKey, box) {
  if (!user) { box.replaceChildren(el('div', {class: 'notice bad'}, 'Name a user first.')); return; }
  const listPath = '/recommend?' + new URLSearchParams({user, k: '10', exclude_seen: '1'}).toString();
  let before = null;
  try { before = await getJson(listPath); } catch (e) { if (e.status !== 404) throw e; }
  try {
    await postJson('/interactions', {user, item: itemKey, timestamp: Math.floor(Date.now() / 1000)});
  } catch (e) {
    box.replaceChildren(el('div', {class: 'notice bad', id: 'play-error'},
      `${e.status || ''} ${e.status === 401 ? 'Unauthorized' : 'refused'}: ${e.message}. Nothing was stored.`));
    return;
  }
  // The server stores the play before it replies; the list reflects it at once.
  const after = await getJson(listPath);
  box.replaceChildren(listDiff(user, before, after));
}

function listDiff(user, before, after) {
  const keys = (r) => (r ? r.results.map((h) => h.key) : []);
  const old = keys(before), now = keys(after);
  const changed = old.join('\n') !== now.join('\n');
  const column = (title, result, other) => card(title, el('ol', {class: 'results'},
    (result ? result.results : []).map((h) => el('li', {class: other.includes(h.key) ? null : 'changed'}, itemLink(h)))));
  return el('div', {},
    el('div', {class: 'notice ' + (changed ? 'ok' : 'bad'), id: 'play-outcome', 'data-changed': String(changed)},
       changed ? `Play stored. ${user}'s list changed: ${now.filter((k) => !old.includes(k)).length} new entries, order updated.`
               : `Play stored. ${user}'s list did not change.`),
    el('div', {class: 'diff'}, column('before', before, now), column('after', after, old)),
    el('p', {}, el('a', {href: '#/user/' + encodeURIComponent(user)}, `open ${user}'s page`)));
}

// ---- the KG graph -----------------------------------------------------------------------------

function drawGraph(box, graph) {
  const width = 1000, height = 520, cx = width / 2, cy = height / 2;
  const nodes = new Map(graph.nodes.map((n) => [n.id, Object.assign({}, n)]));
  const ring1 = graph.nodes.filter((n) => n.hops === 1), ring2 = graph.nodes.filter((n) => n.hops === 2);
  const center = nodes.get(graph.center);
  center.x = cx; center.y = cy;
  // First hop on an inner ellipse; second hop on an outer one, in the order of the first-hop node each
  // was reached from, so that a node's neighbours sit beyond it.
  ring1.forEach((n, i) => {
    const angle = (2 * Math.PI * i) / Math.max(1, ring1.length) - Math.PI / 2;
    Object.assign(nodes.get(n.id), {x: cx + 230 * Math.cos(angle), y: cy + 135 * Math.sin(angle), angle});
  });
  const parentAngle = new Map();
  for (const e of graph.edges) {
    const a = nodes.get(e.source), b = nodes.get(e.target);
    if (!a || !b) continue;
    if (a.hops === 2 && b.hops === 1 && !parentAngle.has(a.id)) parentAngle.set(a.id, b.angle);
    if (b.hops === 2 && a.hops === 1 && !parentAngle.has(b.id)) parentAngle.set(b.id, a.angle);
  }
  const outer = ring2.map((n) => n.id).sort((p, q) => (parentAngle.get(p) ?? 0) - (parentAngle.get(q) ?? 0));
  outer.forEach((id, i) => {
    const angle = (2 * Math.PI * i) / Math.max(1, outer.length) - Math.PI / 2 + Math.PI / Math.max(1, outer.length);
    const stagger = i % 2 ? 0.9 : 1;
    Object.assign(nodes.get(id), {x: cx + 440 * stagger * Math.cos(angle), y: cy + 225 * stagger * Math.sin(angle)});
  });
  const root = svg('svg', {class: 'kg', id: 'kg-graph', viewBox: `0 0 ${width} ${height}`, role: 'img',
                           'aria-label': `knowledge graph around ${nameOf(center)}`});
  for (const e of graph.edges) {
    const a = nodes.get(e.source), b = nodes.get(e.target);
    if (!a || !b || a.x === undefined || b.x === undefined) continue;
    root.append(svg('line', {x1: a.x, y1: a.y, x2: b.x, y2: b.y}));
    if (a.hops + b.hops <= 1) {
      root.append(svg('text', {class: 'relation', x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 - 3, 'text-anchor': 'middle'}, e.relation));
    }
  }
  for (const n of nodes.values()) {
    if (n.x === undefined) continue;
    const r = n.hops === 0 ? 11 : n.hops === 1 ? 7 : 5;
    const dot = svg('circle', {cx: n.x, cy: n.y, r, class: `${n.kind}${n.hops === 0 ? ' center' : ''}`, 'data-id': n.id,
                               'data-kind': n.kind},
                    svg('title', {}, `${nameOf(n)} (${n.kind}${n.degree !== undefined ? `, ${n.degree}${n.degree_capped ? '+' : ''} links` : ''})`));
    dot.addEventListener('click', async () => {
      if (n.kind === 'item' && n.hops > 0) { location.hash = '#/item/' + encodeURIComponent(n.key); return; }
      if (n.hops === 0) return;
      try { drawGraph(box, await getJson(`/graph?node=${n.id}&hops=2`)); } catch (e) { showError(`${e.status}: ${e.message}`); }
    });
    root.append(dot);
    const label = nameOf(n);
    root.append(svg('text', {x: n.x, y: n.y + r + 11, 'text-anchor': 'middle'}, label.length > 26 ? label.slice(0, 25) + '…' : label));
  }
  const legend = el('p', {class: 'legend'},
    el('span', {}, swatch('var(--item)'), 'item'), el('span', {}, swatch('var(--entity)'), 'entity'),
    el('span', {class: 'muted'}, `${graph.nodes.length} nodes, ${graph.edges.length} links shown around ${nameOf(center)}`));
  box.replaceChildren(root, legend);
}

function swatch(color) {
  const i = el('i');
  i.style.background = color;
  return i;
}

// ---- user -------------------------------------------------------------------------------------

async function userPage(key) {
  const historyList = el('ol', {class: 'results', id: 'history'});
  const recs = el('ol', {class: 'results', id: 'recommendations'});
  const fresh = el('ol', {class: 'results', id: 'new-recommendations'});
  const note = el('p', {class: 'muted', id: 'recs-note'});
  const playResult = el('div', {id: 'play-result'});
  page(el('h1', {}, 'User ', key),
       el('div', {class: 'grid'},
          card('Recommendations', note, recs),
          card('New items only', el('p', {class: 'muted'}, 'Items nobody has played yet, placed from content and KG neighbours.'), fresh),
          card('History', historyList),
          card('Last play', playResult)));
  const load = async () => {
    const [history, list, newOnly] = await Promise.all([
      getJson(`/user?user=${encodeURIComponent(key)}&limit=50`),
      getJson('/recommend?' + new URLSearchParams({user: key, k: '10', explain: '1', exclude_seen: '1'})),
      getJson('/recommend?' + new URLSearchParams({user: key, k: '5', explain: '1', new_only: '1', exclude_seen: '1'})),
    ]);
    historyList.replaceChildren(...history.items.map((h) => el('li', {}, itemLink(h), el('span', {class: 'muted'}, ` · ${h.plays} plays`))));
    if (history.total > history.items.length) historyList.append(el('li', {class: 'muted'}, `… ${history.total - history.items.length} more`));
    note.textContent = !list.personalised ? 'No plays yet: the most played items lately.'
      : list.user_from_history ? 'Folded in from their plays (not in the last rebuild).'
      : list.plays_since_version ? `${list.plays_since_version} play${list.plays_since_version === 1 ? '' : 's'} since model v${list.model_version} folded in.`
      : `model v${list.model_version}`;
    const render = (target, result) => target.replaceChildren(...result.results.map((h) => el('li', {'data-key': h.key},
      itemLink(h), h.placed ? el('span', {class: 'tag new'}, 'new') : null, h.explored ? el('span', {class: 'tag explored'}, 'explored') : null,
      el('span', {class: 'muted'}, ` score ${number(h.score)} `),
      el('button', {class: 'small play', onclick: () => playAndCompare(key, h.key, playResult).then(load)}, '▶'),
      el('ul', {class: 'reasons'}, (h.explain || []).map((r) => el('li', {}, r))))));
    render(recs, list);
    render(fresh, newOnly);
  };
  await load();
}

// ---- model ------------------------------------------------------------------------------------

async function modelPage() {
  const data = await getJson('/versions');
  const rows = data.versions.map((v) => {
    const losses = v.losses || [];
    const last = losses[losses.length - 1] || {};
    const seconds = losses.reduce((s, l) => s + (l.seconds || 0), 0);
    const c = v.counts || {};
    return el('tr', {class: v.current ? 'current' : null},
      el('td', {}, `v${v.version}`, v.current ? el('span', {class: 'tag new'}, 'current') : null),
      el('td', {}, (v.created || '').replace('T', ' ').replace('Z', ' UTC')),
      el('td', {class: 'num'}, v.epochs), el('td', {class: 'num'}, number(seconds, 1)),
      el('td', {class: 'num'}, number(last.bpr, 4)), el('td', {class: 'num'}, number(last.kg, 4)),
      el('td', {class: 'num'}, v.fold_in ? number(v.fold_in.holdout_recall20, 4) : '–'),
      el('td', {}, `${c.users} users, ${c.items} items, ${c.entities} entities, ${c.interactions} interactions, ${c.kg_triples} triples`),
      el('td', {class: 'num'}, v.cold_items), el('td', {class: 'num'}, v.late_items_placed ?? '–'));
  });
  page(el('h1', {}, 'Model versions'),
       card(null, el('p', {class: 'muted'}, 'Each rebuild trains an immutable version; queries use the current one. ',
                     'Hold-out Recall@20 is the fold-in check of each rebuild (users re-derived from part of their plays). ',
                     'Offline evaluation tables: mosaic eval, docs/results.md.'),
            el('table', {id: 'versions'},
               el('thead', {}, el('tr', {}, ['version', 'created', 'epochs', 'training s', 'final BPR loss', 'final KG loss',
                 'hold-out Recall@20', 'trained on', 'cold items', 'placed during rebuild'].map((h) => el('th', {}, h)))),
               el('tbody', {}, rows.length ? rows : el('tr', {}, el('td', {colspan: 10}, 'no version yet: run mosaic rebuild'))))));
}

// ---- health -----------------------------------------------------------------------------------

// Reads the Prometheus text of /metrics into {requests: {endpoint: count}, buckets: {endpoint: [[le, count]]}, gauges}.
function parseMetrics(text) {
  const out = {requests: {}, errors: {}, buckets: {}, gauges: {}};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-z_]+)(?:\{([^}]*)\})?\s+(\S+)$/);
    if (!m) continue;
    const labels = {};
    for (const part of (m[2] || '').matchAll(/(\w+)="([^"]*)"/g)) labels[part[1]] = part[2];
    const value = Number(m[3]);
    if (m[1] === 'mosaic_requests_total') {
      out.requests[labels.endpoint] = (out.requests[labels.endpoint] || 0) + value;
      if (Number(labels.code) >= 500) out.errors[labels.endpoint] = (out.errors[labels.endpoint] || 0) + value;
    } else if (m[1] === 'mosaic_request_duration_seconds_bucket') {
      (out.buckets[labels.endpoint] = out.buckets[labels.endpoint] || []).push([labels.le === '+Inf' ? Infinity : Number(labels.le), value]);
    } else if (!m[2]) {
      out.gauges[m[1]] = value;
    }
  }
  return out;
}

// The q-quantile of the requests between two cumulative histograms (linear within a bucket); null when none.
function quantile(before, after, q) {
  const counts = after.map(([le, n], i) => [le, n - (before && before[i] ? before[i][1] : 0)]);
  const total = counts.length ? counts[counts.length - 1][1] : 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0, below = 0;
  for (const [le, n] of counts) {
    if (n >= rank) {
      if (le === Infinity) return lower;
      return lower + (le - lower) * (n === below ? 0 : (rank - below) / (n - below));
    }
    if (le !== Infinity) lower = le;
    below = n;
  }
  return lower;
}

const PALETTE = ['#2f6fdf', '#e08a1e', '#1b7f3b', '#b3261e', '#7b4bd1', '#0a8a8a', '#9a5a00', '#c2185b', '#455a64', '#6d8b00'];
const health = {samples: [], windowSeconds: 600};

async function healthPage() {
  const rateChart = el('div', {id: 'chart-rate'}), p50Chart = el('div', {id: 'chart-p50'}), p99Chart = el('div', {id: 'chart-p99'});
  const table = el('tbody', {});
  page(el('h1', {}, 'Health'),
       el('p', {class: 'muted'}, 'From /metrics, sampled every second while this page is open; the charts fill as samples arrive and keep the last 10 minutes.'),
       el('div', {class: 'grid'},
          card('Requests per second, by endpoint', rateChart), card('Latency p50 (ms)', p50Chart), card('Latency p99 (ms)', p99Chart),
          card('Since this page opened', el('table', {id: 'health-table'}, el('thead', {}, el('tr', {},
            ['endpoint', 'requests', '5xx', 'req/s', 'p50 ms', 'p99 ms'].map((h) => el('th', {class: h === 'endpoint' ? null : 'num'}, h)))), table))));
  const tick = async () => {
    try {
      const res = await fetch('/metrics');
      health.samples.push({t: Date.now() / 1000, m: parseMetrics(await res.text())});
      const cutoff = Date.now() / 1000 - health.windowSeconds;
      while (health.samples.length > 2 && health.samples[0].t < cutoff) health.samples.shift();
      drawHealth(rateChart, p50Chart, p99Chart, table);
    } catch (e) {
      showError('cannot read /metrics: ' + e);
    }
  };
  await tick();
  const timer = setInterval(tick, 1000);
  leavePage = () => clearInterval(timer);
}

function drawHealth(rateChart, p50Chart, p99Chart, table) {
  const s = health.samples;
  const endpoints = [...new Set(s.flatMap((x) => Object.keys(x.m.requests)))].sort();
  const series = (value) => endpoints.map((ep) => ({name: ep, points: s.slice(1).map((cur, i) => [cur.t, value(ep, s[i], cur)])
    .filter(([, v]) => v !== null)}));
  const rate = (ep, a, b) => ((b.m.requests[ep] || 0) - (a.m.requests[ep] || 0)) / Math.max(1e-3, b.t - a.t);
  const latency = (q) => (ep, a, b) => {
    if (!b.m.buckets[ep]) return null;
    const v = quantile(a.m.buckets[ep], b.m.buckets[ep], q);
    return v === null ? null : v * 1000;
  };
  lineChart(rateChart, series(rate), 'req/s');
  lineChart(p50Chart, series(latency(0.5)), 'ms');
  lineChart(p99Chart, series(latency(0.99)), 'ms');
  const first = s[0], last = s[s.length - 1];
  table.replaceChildren(...endpoints.map((ep) => {
    const p50 = s.length > 1 ? quantile(first.m.buckets[ep], last.m.buckets[ep] || [], 0.5) : null;
    const p99 = s.length > 1 ? quantile(first.m.buckets[ep], last.m.buckets[ep] || [], 0.99) : null;
    return el('tr', {}, el('td', {}, ep), el('td', {class: 'num'}, last.m.requests[ep] || 0), el('td', {class: 'num'}, last.m.errors[ep] || 0),
              el('td', {class: 'num'}, s.length > 1 ? number(((last.m.requests[ep] || 0) - (first.m.requests[ep] || 0)) / Math.max(1e-3, last.t - first.t)) : '–'),
              el('td', {class: 'num'}, p50 === null ? '–' : number(p50 * 1000, 2)), el('td', {class: 'num'}, p99 === null ? '–' : number(p99 * 1000, 2)));
  }));
}

function lineChart(box, series, unit) {
  const width = 600, height = 220, left = 46, right = 8, top = 10, bottom = 22;
  const all = series.flatMap((x) => x.points);
  const longest = Math.max(0, ...series.map((x) => x.points.length));
  const root = svg('svg', {class: 'chart', viewBox: `0 0 ${width} ${height}`, 'data-points': all.length, 'data-longest': longest});
  if (!all.length) {
    root.append(svg('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle'}, 'collecting samples…'));
    box.replaceChildren(root);
    return;
  }
  const t0 = Math.min(...all.map((p) => p[0])), t1 = Math.max(...all.map((p) => p[0]), t0 + 1);
  const vmax = Math.max(...all.map((p) => p[1]), 1e-9) * 1.1;
  const x = (t) => left + ((t - t0) / (t1 - t0)) * (width - left - right);
  const y = (v) => height - bottom - (v / vmax) * (height - top - bottom);
  for (const frac of [0, 0.5, 1]) {
    root.append(svg('line', {class: 'axis', x1: left, x2: width - right, y1: y(vmax * frac / 1.1), y2: y(vmax * frac / 1.1)}));
    root.append(svg('text', {x: left - 4, y: y(vmax * frac / 1.1) + 3, 'text-anchor': 'end'}, number(vmax * frac / 1.1, vmax < 10 ? 2 : 0)));
  }
  root.append(svg('text', {x: left, y: height - 6}, `${Math.round(t1 - t0)} s`), svg('text', {x: width - right, y: height - 6, 'text-anchor': 'end'}, `now · ${unit}`));
  const legend = el('p', {class: 'legend'});
  series.forEach((line, i) => {
    if (!line.points.length) return;
    const color = PALETTE[i % PALETTE.length];
    root.append(svg('polyline', {stroke: color, points: line.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' '),
                                 'data-endpoint': line.name}));
    for (const [t, v] of line.points.slice(-1)) root.append(svg('circle', {cx: x(t), cy: y(v), r: 2.5, fill: color}));
    legend.append(el('span', {}, swatch(color), line.name));
  });
  box.replaceChildren(root, legend);
}

// The keygate dashboard: a small ES module over the admin API (/admin/v1). No framework, no CDN:
// keygate serves these files itself. The admin key lives in sessionStorage (this tab only) and is
// sent as a Bearer header; it never goes in a URL, and nothing here logs it.

const API = '/admin/v1';
const STORE_KEY = 'keygate.adminKey';
const STATES = ['active', 'backup', 'cooling', 'exhausted', 'retired'];
const POLL_MS = { rotations: 2000, default: 5000 };

const $ = (id) => document.getElementById(id);
let adminKey = sessionStorage.getItem(STORE_KEY) || '';
let timer = null;
let seenRotations = new Set();

// ---------------------------------------------------------------- DOM helpers (no innerHTML)

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'style') el.style.cssText = v;  // CSSOM: allowed by the page's CSP
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'style') el.style.cssText = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function badge(state) {
  return h('span', { class: `badge s-${state}` }, state);
}

function table(headers, rows, caption) {
  if (rows.length === 0) return h('p', { class: 'empty' }, 'Nothing to show.');
  return h('table', {},
    caption ? h('caption', { class: 'muted', style: 'text-align:left;padding:0.4rem 0.7rem' }, caption) : null,
    h('thead', {}, h('tr', {}, headers.map(([label, cls]) => h('th', { scope: 'col', class: cls }, label)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell, i) =>
      h('td', { class: headers[i][1] }, cell))))));
}

function usd(micros) {
  if (micros === null || micros === undefined) return '–';
  return '$' + (micros / 1e6).toFixed(micros % 10000 === 0 ? 2 : 4);
}

function when(text) {
  if (!text) return '–';
  const d = new Date(text);
  return isNaN(d) ? text : d.toLocaleString();
}

function setStatus(text) { $('status').textContent = text; }

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const res = await fetch(API + path, {
    method: options.method || 'GET',
    headers: {
      Authorization: 'Bearer ' + adminKey,
      ...(options.body ? { 'Content-Type': 'application/json' } : {}),
    },
    body: options.body ? JSON.stringify(options.body) : undefined,
    cache: 'no-store',
    credentials: 'omit',
  });
  let doc = null;
  try { doc = await res.json(); } catch { doc = null; }
  if (!res.ok) {
    const message = doc && doc.error ? doc.error.message : `HTTP ${res.status}`;
    if (res.status === 401) signOut(message);
    throw new ApiError(res.status, message);
  }
  return doc;
}

// ---------------------------------------------------------------- sign-in

async function signIn(key) {
  adminKey = key;
  const me = await api('/whoami');
  sessionStorage.setItem(STORE_KEY, key);
  $('who-name').textContent = 'signed in as ' + me.admin;
  $('signin').hidden = true;
  $('views').hidden = false;
  $('nav').hidden = false;
  $('who').hidden = false;
  route();
}

function signOut(message = '') {
  adminKey = '';
  sessionStorage.removeItem(STORE_KEY);
  clearTimeout(timer);
  $('views').hidden = true;
  $('nav').hidden = true;
  $('who').hidden = true;
  $('signin').hidden = false;
  $('signin-error').textContent = message;
  $('admin-key').value = '';
}

// ---------------------------------------------------------------- views

async function renderOverview() {
  const { pools } = await api('/pools');
  const box = $('pools');
  box.replaceChildren(...pools.map(poolCard));
  if (pools.length === 0) box.replaceChildren(h('p', { class: 'empty' }, 'No pools yet.'));
  const [cooling, exhausted] = await Promise.all([
    api('/keys?state=cooling'), api('/keys?state=exhausted')]);
  const rows = [...cooling.keys, ...exhausted.keys].map((k) => [
    String(k.id), k.pool, badge(k.state), h('code', {}, k.key),
    k.state === 'cooling' ? 'until ' + when(k.cooldown_until) : '–',
    k.last_error || '–']);
  $('attention').replaceChildren(table(
    [['ID'], ['Pool'], ['State'], ['Key'], ['Cooldown'], ['Reason']], rows));
}

function poolCard(p) {
  const c = p.counts;
  const total = Math.max(c.total, 1);
  const width = 300;
  let x = 0;
  const bars = STATES.filter((st) => c[st] > 0).map((st) => {
    const w = (c[st] / total) * width;
    const r = s('rect', { x, y: 0, width: w, height: 18, style: `fill: var(--${st})` },
      s('title', {}, `${st}: ${c[st]}`));
    x += w;
    return r;
  });
  const label = STATES.map((st) => `${c[st]} ${st}`).join(', ');
  return h('article', { class: 'card pool' },
    h('h2', {}, p.name),
    h('p', { class: 'muted' }, `${p.provider} · ${c.total} keys · version ${p.version}`),
    s('svg', { viewBox: `0 0 ${width} 18`, width: '100%', height: 18, role: 'img',
      preserveAspectRatio: 'none',
      'aria-label': `Keys of pool ${p.name} by state: ${label}` },
      c.total === 0 ? s('rect', { x: 0, y: 0, width, height: 18, style: 'fill: var(--line)' }) : bars),
    h('ul', { class: 'legend' }, STATES.map((st) =>
      h('li', { style: `--c: var(--${st})` }, `${st} ${c[st]}`))));
}

async function fillPoolSelects() {
  const { pools } = await api('/pools');
  for (const id of ['import-pool', 'keys-pool']) {
    const sel = $(id);
    const keep = sel.value;
    const first = id === 'keys-pool' ? [h('option', { value: '' }, 'all pools')] : [];
    sel.replaceChildren(...first, ...pools.map((p) => h('option', { value: p.name }, p.name)));
    if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
  }
}

async function renderKeys() {
  await fillPoolSelects();
  const q = new URLSearchParams();
  if ($('keys-pool').value) q.set('pool', $('keys-pool').value);
  if ($('keys-state').value) q.set('state', $('keys-state').value);
  const { keys, counts } = await api('/keys?' + q);
  const rows = keys.map((k) => [String(k.id), k.pool, badge(k.state), h('code', {}, k.key),
    String(k.priority), `${usd(k.spend_micros)} / ${usd(k.budget_micros)}`, k.label || '–',
    k.last_error || (k.replaced_by ? `replaced by ${k.replaced_by}` : '–')]);
  $('keys-table').replaceChildren(table(
    [['ID'], ['Pool'], ['State'], ['Key'], ['Priority', 'num'], ['Spend / budget', 'num'],
      ['Label'], ['Note']], rows,
    `${counts.total} keys: ${STATES.map((st) => `${counts[st]} ${st}`).join(', ')}`));
}

async function importKeys(ev) {
  ev.preventDefault();
  const keys = $('import-keys').value.split('\n').map((k) => k.trim()).filter(Boolean);
  const out = $('import-result');
  try {
    const r = await api(`/pools/${encodeURIComponent($('import-pool').value)}/keys`, {
      method: 'POST', body: { keys, state: $('import-state').value },
    });
    out.textContent = `Imported ${r.inserted} key(s) into ${r.pool} as ${r.state}.`;
    out.className = '';
    $('import-keys').value = '';  // the secrets leave the page as soon as they are stored
    await renderKeys();
  } catch (e) {
    out.textContent = e.message;
    out.className = 'error';
  }
}

async function renderRotations() {
  const { rotations } = await api('/rotations?limit=50');
  const first = seenRotations.size === 0;
  const items = rotations.map((r) => {
    const fresh = !first && !seenRotations.has(r.id);
    seenRotations.add(r.id);
    const color = r.outcome === 'rotated' ? 'var(--active)' : 'var(--exhausted)';
    return h('li', { class: fresh ? 'new' : '', style: `--c: ${color}`, 'data-rotation-id': r.id },
      h('div', { class: 'when' }, when(r.time), ' · ', r.pool, ' · by ', r.actor || 'unknown'),
      h('div', {}, h('strong', {}, `key ${r.failed_key_id}`), ' → ',
        r.new_key_id ? h('strong', {}, `key ${r.new_key_id}`) : h('em', {}, 'no backup left'),
        ' ', h('span', { class: `badge ${r.outcome === 'rotated' ? 's-active' : 's-exhausted'}` },
          r.outcome.replace('_', ' '))),
      h('div', { class: 'muted' }, r.reason));
  });
  $('timeline').replaceChildren(...items);
  if (items.length === 0) $('timeline').replaceChildren(h('li', {}, 'No rotations yet.'));
}

async function renderSpend() {
  const { keys } = await api('/keys');
  const live = keys.filter((k) => k.state !== 'retired');
  const budgeted = live.filter((k) => k.budget_micros)
    .map((k) => ({ ...k, ratio: k.spend_micros / k.budget_micros }))
    .sort((a, b) => b.ratio - a.ratio);
  const box = $('spend-chart');
  if (budgeted.length === 0) {
    box.replaceChildren(h('p', { class: 'empty' }, 'No key has a known budget yet.'));
    return;
  }
  const rowH = 26, labelW = 220, barW = 520, width = labelW + barW + 140;
  const svg = s('svg', { viewBox: `0 0 ${width} ${budgeted.length * rowH + 10}`, width: '100%',
    role: 'img', 'aria-label': 'Spend against budget per key' },
    budgeted.map((k, i) => {
      const y = i * rowH + 4;
      const pct = Math.min(k.ratio, 1);
      const color = k.ratio >= 0.9 ? 'var(--exhausted)' : k.ratio >= 0.7 ? 'var(--cooling)' : 'var(--active)';
      return s('g', {},
        s('title', {}, `key ${k.id}: ${usd(k.spend_micros)} of ${usd(k.budget_micros)}`),
        s('text', { x: 0, y: y + 14 }, `${k.pool} · ${k.id} · ${k.key}`),
        s('rect', { x: labelW, y, width: barW, height: 18, rx: 4, style: 'fill: var(--line)' }),
        s('rect', { x: labelW, y, width: Math.max(pct * barW, 1), height: 18, rx: 4, style: `fill: ${color}` }),
        s('text', { x: labelW + barW + 8, y: y + 14 },
          `${usd(k.spend_micros)} / ${usd(k.budget_micros)} (${Math.round(k.ratio * 100)}%)`));
    }));
  box.replaceChildren(h('div', { class: 'card' }, svg));
}

// Up to `pages` pages of the newest usage records.
async function recentUsage(pages = 3) {
  let out = [];
  let before = null;
  for (let i = 0; i < pages; i++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (before) q.set('before_id', before);
    const page = await api('/usage?' + q);
    out = out.concat(page.usage);
    before = page.next_before_id;
    if (!before) break;
  }
  return out;
}

function median(xs) {
  if (xs.length === 0) return 0;
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)];
}

function lineChart(series, labels, title) {
  const w = 560, hgt = 200, pad = 32;
  const max = Math.max(1, ...series.flatMap((sr) => sr.values));
  const n = Math.max(labels.length, 2);
  const x = (i) => pad + (i * (w - 2 * pad)) / (n - 1);
  const y = (v) => hgt - pad - (v / max) * (hgt - 2 * pad);
  return s('svg', { viewBox: `0 0 ${w} ${hgt}`, width: '100%', role: 'img', 'aria-label': title },
    s('line', { x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, style: 'stroke: var(--line)' }),
    s('text', { x: 2, y: pad }, String(Math.round(max))),
    s('text', { x: 2, y: hgt - pad }, '0'),
    labels.length ? s('text', { x: pad, y: hgt - 8 }, labels[0]) : null,
    labels.length > 1 ? s('text', { x: w - pad - 40, y: hgt - 8 }, labels[labels.length - 1]) : null,
    series.map((sr, k) => s('g', {},
      s('polyline', { points: sr.values.map((v, i) => `${x(i)},${y(v)}`).join(' '),
        style: `fill: none; stroke: ${sr.color}; stroke-width: 2` }),
      sr.values.map((v, i) => s('circle', { cx: x(i), cy: y(v), r: 3, style: `fill: ${sr.color}` },
        s('title', {}, `${labels[i]}: ${sr.name} ${Math.round(v)}`))),
      s('text', { x: w - pad - 120, y: 14 + k * 14, style: `fill: ${sr.color}` }, sr.name))));
}

async function renderTraffic() {
  const usage = await recentUsage();
  $('traffic-note').textContent =
    `From the newest ${usage.length} usage records, by minute.`;
  const buckets = new Map();
  for (const u of usage) {
    const m = Math.floor(u.time_ms / 60000);
    if (!buckets.has(m)) buckets.set(m, []);
    buckets.get(m).push(u);
  }
  const minutes = [...buckets.keys()].sort((a, b) => a - b).slice(-60);
  const labels = minutes.map((m) => new Date(m * 60000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  const by = (f) => minutes.map((m) => f(buckets.get(m)));
  $('chart-requests').replaceChildren(lineChart([
    { name: 'requests', color: 'var(--backup)', values: by((b) => b.length) },
    { name: 'errors', color: 'var(--exhausted)', values: by((b) => b.filter((u) => u.status >= 400).length) },
  ], labels, 'Requests and errors per minute'));
  $('chart-latency').replaceChildren(lineChart([
    { name: 'latency p50', color: 'var(--cooling)', values: by((b) => median(b.map((u) => u.latency_ms))) },
    { name: 'TTFB p50', color: 'var(--active)', values: by((b) => median(b.map((u) => u.ttfb_ms))) },
  ], labels, 'Latency and time to first byte per minute'));
}

async function renderUsage() {
  const usage = await recentUsage();
  const group = (keyOf) => {
    const m = new Map();
    for (const u of usage) {
      const k = keyOf(u);
      const g = m.get(k) || { requests: 0, input: 0, output: 0, cost: 0, errors: 0 };
      g.requests++; g.input += u.input_tokens; g.output += u.output_tokens;
      g.cost += Number(u.cost_usd); g.errors += u.status >= 400 ? 1 : 0;
      m.set(k, g);
    }
    return [...m.entries()].sort((a, b) => b[1].cost - a[1].cost || b[1].requests - a[1].requests);
  };
  const rows = (groups) => groups.map(([name, g]) => [name, String(g.requests), String(g.errors),
    g.input.toLocaleString(), g.output.toLocaleString(), '$' + g.cost.toFixed(4)]);
  const headers = (first) => [[first], ['Requests', 'num'], ['Errors', 'num'], ['Input tokens', 'num'],
    ['Output tokens', 'num'], ['Cost', 'num']];
  $('usage-clients').replaceChildren(table(headers('Client key'),
    rows(group((u) => (u.client_key_id ? `client ${u.client_key_id}` : 'none')))));
  $('usage-models').replaceChildren(table(headers('Model'), rows(group((u) => u.model || '–'))));
}

async function renderProxies() {
  const { proxies } = await api('/proxies');
  $('proxies-table').replaceChildren(table(
    [['ID'], ['URL'], ['Health'], ['Keys', 'num'], ['Last checked'], ['Last error']],
    proxies.map((p) => [String(p.id), h('code', {}, p.url),
      h('span', { class: `badge ${p.healthy ? 's-active' : 's-exhausted'}` }, p.healthy ? 'healthy' : 'down'),
      String(p.bound_keys), when(p.checked_at), p.last_error || '–'])));
}

const VIEWS = {
  overview: renderOverview, keys: renderKeys, rotations: renderRotations, spend: renderSpend,
  traffic: renderTraffic, usage: renderUsage, proxies: renderProxies,
};

function currentView() {
  const v = location.hash.replace('#', '');
  return VIEWS[v] ? v : 'overview';
}

async function refresh() {
  clearTimeout(timer);
  if (!adminKey) return;
  const view = currentView();
  try {
    await VIEWS[view]();
    setStatus('Updated ' + new Date().toLocaleTimeString());
  } catch (e) {
    if (e.status !== 401) setStatus('Could not refresh: ' + e.message);
  }
  if (adminKey && currentView() === view) {
    timer = setTimeout(refresh, POLL_MS[view] || POLL_MS.default);
  }
}

function route() {
  const view = currentView();
  for (const sec of document.querySelectorAll('[data-view]')) sec.hidden = sec.dataset.view !== view;
  for (const a of document.querySelectorAll('#nav a')) {
    if (a.getAttribute('href') === '#' + view) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  refresh();
}

// ---------------------------------------------------------------- wiring

$('signin-form').addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const key = $('admin-key').value.trim();
  try {
    await signIn(key);
  } catch (e) {
    signOut(e.status === 401 ? 'That admin key was not accepted.' : e.message);
  }
});
$('sign-out').addEventListener('click', () => signOut());
$('import-form').addEventListener('submit', importKeys);
$('keys-pool').addEventListener('change', renderKeys);
$('keys-state').addEventListener('change', renderKeys);
window.addEventListener('hashchange', route);

if (adminKey) signIn(adminKey).catch((e) => signOut(e.message));

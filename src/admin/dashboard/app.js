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
  // Cents when exact, else enough decimals that a small cost is not shown as $0.0000.
  const digits = micros % 10000 === 0 ? 2 : Math.abs(micros) < 10000 ? 6 : 4;
  return '$' + (micros / 1e6).toFixed(digits);
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
  hideSecret();
  selectedClient = null;
  $('client-detail').replaceChildren();
}

// ---------------------------------------------------------------- views

async function renderOverview() {
  const [{ pools }, spend] = await Promise.all([api('/pools'), api('/spend/stats')]);
  const bands = new Map(spend.pools.map((p) => [p.pool, p.bands]));
  const box = $('pools');
  box.replaceChildren(...pools.map((p) => poolCard(p, bands.get(p.name))));
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

function poolCard(p, bands) {
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
      h('li', { style: `--c: var(--${st})` }, `${st} ${c[st]}`))),
    bands ? h('div', { class: 'bands' },
      h('p', { class: 'muted' }, 'Keys in service by budget used'),
      countsBar(bands, BANDS, (b) => `var(--band-${b})`, `Keys of pool ${p.name} by budget band: ` +
        BANDS.map((b) => `${bands[b]} ${BAND_LABEL[b]}`).join(', ')),
      h('ul', { class: 'legend' }, BANDS.filter((b) => bands[b] > 0).map((b) =>
        h('li', { style: `--c: var(--band-${b})` }, `${BAND_LABEL[b]} ${bands[b]}`)))) : null);
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

const BANDS = ['lt50', '50-85', '85-95', 'ge95', 'unknown'];
const BAND_LABEL = {
  lt50: 'under 50 %',
  '50-85': '50–85 %',
  '85-95': '85–95 %',
  ge95: '95 % and over',
  unknown: 'budget unknown'
};

function bandBadge(band) {
  return h('span', {class: `badge b-${band}`}, BAND_LABEL[band] || band);
}

// A bar of counts by category, as wide as its box: one coloured segment per non-zero count.
function countsBar(counts, order, colorOf, label, width = 300) {
  const total = order.reduce((n, k) => n + (counts[k] || 0), 0);
  let x = 0;
  const bars = order.filter((k) => counts[k] > 0).map((k) => {
    const w = (counts[k] / total) * width;
    const r =
        s('rect', {x, y: 0, width: w, height: 18, style: `fill: ${colorOf(k)}`},
          s('title', {}, `${k}: ${counts[k]}`));
    x += w;
    return r;
  });
  return s(
      'svg', {
        viewBox: `0 0 ${width} 18`,
        width: '100%',
        height: 18,
        role: 'img',
        preserveAspectRatio: 'none',
        'aria-label': label
      },
      total === 0 ? s('rect', {x: 0, y: 0, width, height: 18, style: 'fill: var(--line)'}) : bars);
}

async function renderSpend() {
  const {pools} = await api('/spend/stats');
  $('spend-pools')
      .replaceChildren(...pools.map(
          (p) =>
              h('article', {class: 'card pool'}, h('h3', {}, p.pool),
                h('p', {class: 'muted'},
                  `${p.keys} keys in service · last known spend ${usd(p.spend_micros)}`),
                countsBar(
                    p.bands, BANDS, (b) => `var(--band-${b})`,
                    `Keys of pool ${p.pool} by budget band: ` +
                        BANDS.map((b) => `${p.bands[b]} ${BAND_LABEL[b]}`).join(', ')),
                h('ul', {class: 'legend'},
                  BANDS.map(
                      (b) =>
                          h('li', {style: `--c: var(--band-${b})`},
                            `${BAND_LABEL[b]}: ${p.bands[b]}`))))));
  if (pools.length === 0)
    $('spend-pools').replaceChildren(h('p', {class: 'empty'}, 'No pools yet.'));

  const keys = pools.flatMap((p) => p.key_spend.map((k) => ({...k, pool: p.pool})));
  const known = keys.filter((k) => k.budget_micros).sort((a, b) => b.percent - a.percent);
  const unknown = keys.filter((k) => !k.budget_micros);
  const box = $('spend-chart');
  const parts = [];
  if (known.length === 0) {
    parts.push(h('p', {class: 'empty'}, 'No key in service has a known budget yet.'));
  } else {
    const rowH = 26, labelW = 240, barW = 500, width = labelW + barW + 230;
    parts.push(
        h('div', {class: 'card'},
          s('svg', {
            viewBox: `0 0 ${width} ${known.length * rowH + 10}`,
            width: '100%',
            role: 'img',
            'aria-label': 'Spend against budget per key: ' +
                known.map((k) => `key ${k.key_id} ${k.percent}%`).join(', ')
          },
            known.map((k, i) => {
              const y = i * rowH + 4;
              const pct = Math.min(k.spend_micros / k.budget_micros, 1);
              return s(
                  'g', {'data-key-id': k.key_id},
                  s('title', {},
                    `key ${k.key_id}: ${usd(k.spend_micros)} of ${usd(k.budget_micros)}` +
                        (k.checked_at ? `, checked ${when(k.checked_at)}` : '')),
                  s('text', {x: 0, y: y + 14}, `${k.pool} · ${k.key_id} · ${k.key}`),
                  s('rect',
                    {x: labelW, y, width: barW, height: 18, rx: 4, style: 'fill: var(--line)'}),
                  // The checker's threshold: 95 % of the budget.
                  s('line', {
                    x1: labelW + 0.95 * barW,
                    y1: y - 2,
                    x2: labelW + 0.95 * barW,
                    y2: y + 20,
                    style: 'stroke: var(--fg); stroke-dasharray: 2 2'
                  }),
                  s('rect', {
                    x: labelW,
                    y,
                    width: Math.max(pct * barW, 1),
                    height: 18,
                    rx: 4,
                    style: `fill: var(--band-${k.band})`
                  }),
                  s('text', {x: labelW + barW + 8, y: y + 14},
                    `${usd(k.spend_micros)} / ${usd(k.budget_micros)} (${k.percent}%)` +
                        (k.budget_source === 'pool' ? ' · pool budget' : '')));
            }))));
    parts.push(table(
        [
          ['Key'], ['Pool'], ['State'], ['Spend', 'num'], ['Budget', 'num'], ['Share', 'num'],
          ['Band'], ['Last checked']
        ],
        known.map(
            (k) =>
                [h('code', {}, k.key), k.pool, badge(k.state), usd(k.spend_micros),
                 usd(k.budget_micros) + (k.budget_source === 'pool' ? ' (pool)' : ''),
                 `${k.percent}%`, bandBadge(k.band), when(k.checked_at)])));
  }
  if (unknown.length > 0) {
    parts.push(
        h('p', {class: 'muted'},
          `${unknown.length} key(s) without a known budget: ` +
              unknown.map((k) => `${k.pool} · ${k.key_id} (${usd(k.spend_micros)} spent)`)
                  .join(', ')));
  }
  box.replaceChildren(...parts);
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

// The window choices of the Traffic page and their bucket sizes (60 to 96 points each).
const TRAFFIC_BUCKET = { '15m': '10s', '1h': '1m', '6h': '5m', '24h': '15m' };

// Fills a filter <select> with `items` ({value, label}), keeping its choice when still there.
function fillSelect(sel, first, items) {
  const keep = sel.value;
  sel.replaceChildren(h('option', { value: '' }, first),
    ...items.map((i) => h('option', { value: i.value }, i.label)));
  if ([...sel.options].some((o) => o.value === keep)) sel.value = keep;
}

// Requests, errors, latency and TTFB per time bucket, computed by the server over the usage
// records of every instance (/traffic, the numbers of `keygate traffic`).
async function renderTraffic() {
  const [{ pools }, { client_keys: keys }] = await Promise.all([api('/pools'), api('/client-keys')]);
  fillSelect($('traffic-pool'), 'all pools', pools.map((p) => ({ value: p.name, label: p.name })));
  fillSelect($('traffic-client'), 'all client keys',
    keys.map((k) => ({ value: String(k.id), label: `${k.name} (${k.id})` })));
  const since = $('traffic-window').value;
  const q = new URLSearchParams({ since, bucket: TRAFFIC_BUCKET[since] });
  if ($('traffic-pool').value) q.set('pool', $('traffic-pool').value);
  if ($('traffic-client').value) q.set('client_key_id', $('traffic-client').value);
  const t = await api('/traffic?' + q);
  const b = t.buckets;
  const bucketText = TRAFFIC_BUCKET[since];
  $('traffic-note').textContent =
    `Every instance, from the store: ${b.length} buckets of ${bucketText} since ` +
    `${new Date(t.from_ms).toLocaleString()}. Percentiles are estimated from fixed histogram ` +
    'buckets (within one bucket of the exact value).';
  const e = t.total.errors;
  $('traffic-total').replaceChildren(table(
    [['Requests', 'num'], ['Errors', 'num'], ['4xx', 'num'], ['5xx', 'num'], ['No answer', 'num'],
      ['Latency p50', 'num'], ['p95', 'num'], ['p99', 'num'], ['TTFB p50', 'num'], ['TTFB p95', 'num'],
      ['Cost', 'num']],
    [[String(t.total.requests), String(e.total), String(e['4xx']), String(e['5xx']),
      String(e.no_answer), `${t.total.latency_ms.p50} ms`, `${t.total.latency_ms.p95} ms`,
      `${t.total.latency_ms.p99} ms`, `${t.total.ttfb_ms.p50} ms`, `${t.total.ttfb_ms.p95} ms`,
      usd(t.total.cost_micros)]]));
  const labels = b.map((x) => new Date(x.start_ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
  const by = (f) => b.map(f);
  $('chart-requests').replaceChildren(lineChart([
    { name: 'requests', color: 'var(--backup)', values: by((x) => x.requests) },
    { name: 'errors', color: 'var(--exhausted)', values: by((x) => x.errors.total) },
    { name: '5xx + no answer', color: 'var(--cooling)', values: by((x) => x.errors['5xx'] + x.errors.no_answer) },
  ], labels, `Requests and errors per ${bucketText}`));
  $('chart-latency').replaceChildren(lineChart([
    { name: 'p50', color: 'var(--active)', values: by((x) => x.latency_ms.p50) },
    { name: 'p95', color: 'var(--cooling)', values: by((x) => x.latency_ms.p95) },
    { name: 'p99', color: 'var(--exhausted)', values: by((x) => x.latency_ms.p99) },
  ], labels, `Latency p50, p95 and p99 per ${bucketText}, milliseconds`));
  $('chart-ttfb').replaceChildren(lineChart([
    { name: 'p50', color: 'var(--active)', values: by((x) => x.ttfb_ms.p50) },
    { name: 'p95', color: 'var(--cooling)', values: by((x) => x.ttfb_ms.p95) },
  ], labels, `Time to first byte p50 and p95 per ${bucketText}, milliseconds`));
}

const PALETTE = [
  'var(--backup)', 'var(--active)', 'var(--cooling)', 'var(--exhausted)', '#8250df', '#1b7c83',
  'var(--retired)'
];

function isoDay(d) {
  return d.toISOString().slice(0, 10);
}

// The usage report, summed by the server (/usage/report), as `keygate usage` shows it.
async function usageReport(group) {
  const q = new URLSearchParams({group});
  if ($('usage-from').value) q.set('from', $('usage-from').value);
  if ($('usage-to').value) q.set('to', $('usage-to').value);
  return api('/usage/report?' + q);
}

// Stacked bars: one per day, a segment per series.
function stackedBars(days, series, valueOf, title, format) {
  const w = 760, hgt = 220, pad = 36, legendH = 18 * Math.ceil(series.length / 4);
  const totals = days.map((d) => series.reduce((n, sr) => n + (valueOf(sr, d) || 0), 0));
  const max = Math.max(1, ...totals);
  const bw = Math.max(4, Math.min(48, (w - 2 * pad) / Math.max(days.length, 1) - 6));
  const step = (w - 2 * pad) / Math.max(days.length, 1);
  return s(
      'svg',
      {viewBox: `0 0 ${w} ${hgt + legendH}`, width: '100%', role: 'img', 'aria-label': title},
      s('line', {x1: pad, y1: hgt - pad, x2: w - pad, y2: hgt - pad, style: 'stroke: var(--line)'}),
      s('text', {x: 2, y: pad}, format(max)), s('text', {x: 2, y: hgt - pad}, '0'),
      days.map((d, i) => {
        let y = hgt - pad;
        const x = pad + i * step + (step - bw) / 2;
        return s(
            'g', {}, series.map((sr, k) => {
              const v = valueOf(sr, d) || 0;
              if (v === 0) return null;
              const bh = (v / max) * (hgt - 2 * pad);
              y -= bh;
              return s(
                  'rect', {
                    x,
                    y,
                    width: bw,
                    height: Math.max(bh, 1),
                    style: `fill: ${PALETTE[k % PALETTE.length]}`
                  },
                  s('title', {}, `${d} · ${sr.name}: ${format(v)}`));
            }),
            (days.length <= 12 || i % Math.ceil(days.length / 12) === 0 || i === days.length - 1) ?
                s('text', {x: x, y: hgt - pad + 14}, d.slice(5)) :
                null);
      }),
      series.map(
          (sr, k) =>
              s('g', {}, s('rect', {
                  x: pad + (k % 4) * 180,
                  y: hgt - 4 + Math.floor(k / 4) * 18,
                  width: 10,
                  height: 10,
                  style: `fill: ${PALETTE[k % PALETTE.length]}`
                }),
                s('text', {x: pad + (k % 4) * 180 + 14, y: hgt + 5 + Math.floor(k / 4) * 18},
                  sr.name))));
}

function usageRows(rows, first, total) {
  const maxCost = Math.max(1, ...rows.map((r) => r.cost_micros));
  return rows.map(
      (r) =>
          [first(r), String(r.requests), r.input_tokens.toLocaleString(),
           r.output_tokens.toLocaleString(),
           (r.cache_read_tokens + r.cache_write_tokens).toLocaleString(),
           h('span', {},
             h('span', {class: 'meter', 'aria-hidden': 'true'},
               h('span', {style: `width: ${(100 * r.cost_micros) / maxCost}%`})),
             usd(r.cost_micros) +
                 (total.cost_micros ?
                      ` (${Math.round((100 * r.cost_micros) / total.cost_micros)}%)` :
                      ''))]);
}

const USAGE_HEADERS = (first) => [
    [first], ['Requests', 'num'], ['Input tokens', 'num'], ['Output tokens', 'num'],
    ['Cache tokens', 'num'], ['Cost', 'num']];
const clientName = (r) => (r.client_key_id ? `${r.name} (${r.client_key_id})` : 'no client key');

async function renderUsage() {
  if (!$('usage-from').value && !$('usage-to').value) {
    const today = new Date();
    $('usage-from').value = isoDay(new Date(today.getTime() - 29 * 86400000));
    $('usage-to').value = isoDay(today);
  }
  const [byDay, byKey, byModel, detail] = await Promise.all([
    usageReport('day,client_key'), usageReport('client_key'), usageReport('model'),
    usageReport('client_key,model')
  ]);
  const total = byKey.total;
  $('usage-note').textContent =
      `${total.requests} requests, ${total.input_tokens.toLocaleString()} input and ` +
      `${total.output_tokens.toLocaleString()} output tokens, ${usd(total.cost_micros)} from ` +
      `${$('usage-from').value || 'the start'} to ${$('usage-to').value || 'now'} (UTC days).`;
  // Every day of the range on the axis, so quiet days show as gaps.
  const days = [];
  const from =
      new Date(($('usage-from').value || byDay.usage[0]?.day || isoDay(new Date())) + 'T00:00:00Z');
  const to = new Date(($('usage-to').value || isoDay(new Date())) + 'T00:00:00Z');
  for (let d = from; d <= to && days.length < 400; d = new Date(d.getTime() + 86400000))
    days.push(isoDay(d));
  const series = byKey.usage.map((r) => ({id: r.client_key_id, name: clientName(r)}));
  const cost = new Map(byDay.usage.map((r) => [`${r.day}|${r.client_key_id}`, r.cost_micros]));
  $('usage-chart')
      .replaceChildren(
          byDay.usage.length === 0 ?
              h('p', {class: 'empty'}, 'No usage in this range.') :
              stackedBars(
                  days, series, (sr, d) => cost.get(`${d}|${sr.id}`),
                  'Cost per day by client key: ' +
                      series.map((sr, i) => `${sr.name} ${usd(byKey.usage[i].cost_micros)}`)
                          .join(', '),
                  usd));
  $('usage-clients')
      .replaceChildren(table(
          USAGE_HEADERS('Client key'),
          usageRows(
              [...byKey.usage].sort((a, b) => b.cost_micros - a.cost_micros), clientName, total)));
  $('usage-models')
      .replaceChildren(table(
          USAGE_HEADERS('Model'),
          usageRows(
              [...byModel.usage].sort((a, b) => b.cost_micros - a.cost_micros),
              (r) => r.model || '–', total)));
  $('usage-detail')
      .replaceChildren(table(
          [['Client key'], ...USAGE_HEADERS('Model')],
          usageRows(detail.usage, clientName, total)
              .map((row, i) => [row[0], detail.usage[i].model, ...row.slice(1)])));
}

// ---------------------------------------------------------------- client keys

let selectedClient = null;  // the id whose details are open

function showSecret(doc, verb) {
  $('new-secret').value = doc.key;
  $('copy-result').textContent = `${verb} ${doc.name} (client key ${doc.id}, ${doc.hint}).`;
  $('secret-once').hidden = false;
  $('new-secret').focus();
  $('new-secret').select();
}

function hideSecret() {
  $('new-secret').value = '';
  $('copy-result').textContent = '';
  $('secret-once').hidden = true;
}

async function copySecret() {
  const value = $('new-secret').value;
  try {
    await navigator.clipboard.writeText(value);
  } catch {
    $('new-secret').select();
    if (!document.execCommand('copy')) {
      $('copy-result').textContent =
          'Copying was refused by the browser: select the key and copy it.';
      return;
    }
  }
  $('copy-result').textContent = 'Copied to the clipboard.';
}

function limitsText(c) {
  const parts = [];
  parts.push(c.models.length ? c.models.join(', ') : 'every model');
  if (c.rpm !== null) parts.push(`${c.rpm} rpm`);
  if (c.tpm !== null) parts.push(`${c.tpm} tpm`);
  if (c.concurrency !== null) parts.push(`${c.concurrency} at once`);
  return parts.join(' · ');
}

function balanceText(c) {
  if (c.parent_id) return `from parent ${c.parent_id}`;
  return c.credits_micros === null ? 'unlimited' : usd(c.credits_micros);
}

function numOrNull(v) {
  return v.trim() === '' ? null : Number(v);
}

async function clientAction(fn, message) {
  const out = $('client-result');
  try {
    await fn();
    out.textContent = message;
    out.className = '';
  } catch (e) {
    out.textContent = e.message;
    out.className = 'error';
  }
  await renderClients();
  if (selectedClient) await openClient(selectedClient);
}

async function renderClients() {
  const [{client_keys: keys}, usage] =
      await Promise.all([api('/client-keys'), api('/usage/report?group=client_key')]);
  const used = new Map(usage.usage.map((r) => [r.client_key_id, r]));
  const maxCost = Math.max(1, ...usage.usage.map((r) => r.cost_micros));
  const rows = keys.map((c) => {
    const u = used.get(c.id) || {requests: 0, cost_micros: 0};
    return [
      String(c.id),
      h('span', {}, c.name,
        c.parent_id ? h('span', {class: 'muted'}, ` (sub-key of ${c.parent_id})`) : null),
      h('code', {}, c.hint),
      h('span', {class: `badge ${c.enabled ? 's-active' : 's-exhausted'}`},
        c.enabled ? 'enabled' : 'disabled'),
      balanceText(c), limitsText(c), c.expires_at ? when(c.expires_at) : 'never',
      h('span', {},
        h('span', {class: 'meter', 'aria-hidden': 'true'},
          h('span', {style: `width: ${(100 * u.cost_micros) / maxCost}%`})),
        `${u.requests} req · ${usd(u.cost_micros)}`),
      h('div', {class: 'actions'},
        h('button', {
          type: 'button',
          class: 'small',
          'aria-label': `Manage ${c.name}`,
          'data-action': 'manage',
          'data-id': c.id
        },
          'Manage'),
        h('button', {
          type: 'button',
          class: 'ghost small',
          'aria-label': `${c.enabled ? 'Disable' : 'Enable'} ${c.name}`,
          'data-action': c.enabled ? 'disable' : 'enable',
          'data-id': c.id
        },
          c.enabled ? 'Disable' : 'Enable'),
        h('button', {
          type: 'button',
          class: 'ghost small',
          'aria-label': `Roll secret of ${c.name}`,
          'data-action': 'roll',
          'data-id': c.id
        },
          'Roll secret'),
        h('button', {
          type: 'button',
          class: 'danger small',
          'aria-label': `Delete ${c.name}`,
          'data-action': 'delete',
          'data-id': c.id
        },
          'Delete'))
    ];
  });
  $('clients-table')
      .replaceChildren(table(
          [
            ['ID'], ['Name'], ['Key'], ['Status'], ['Balance', 'num'], ['Limits'], ['Expires'],
            ['Usage (all time)', 'num'], ['Actions']
          ],
          rows,
          `${keys.length} client key(s); the secret of each is shown once, when it is created or rolled`));
}

async function onClientsClick(ev) {
  const btn = ev.target.closest('button[data-action]');
  if (!btn) return;
  const id = Number(btn.dataset.id);
  const path = `/client-keys/${id}`;
  switch (btn.dataset.action) {
    case 'manage':
      selectedClient = id;
      await openClient(id);
      $('client-detail').scrollIntoView({block: 'start'});
      return;
    case 'disable':
    case 'enable':
      return clientAction(
          () => api(`${path}/${btn.dataset.action}`, {method: 'POST'}),
          `Client key ${id} ${btn.dataset.action}d.`);
    case 'roll':
      if (!window.confirm(`Give client key ${id} a new secret? The old one stops working.`)) return;
      return clientAction(
          async () => showSecret(await api(`${path}/roll`, {method: 'POST'}), 'Rolled'),
          `Client key ${id} has a new secret.`);
    case 'delete':
      if (!window.confirm(`Delete client key ${id}? Its usage records stay.`)) return;
      if (selectedClient === id) {
        selectedClient = null;
        $('client-detail').replaceChildren();
      }
      return clientAction(() => api(path, {method: 'DELETE'}), `Client key ${id} deleted.`);
    default:
  }
}

function field(id, label, attrs = {}) {
  return h('div', {}, h('label', { for: id
           }, label), h('input', {id, ...attrs}));
}

// The details of one client key: credits, limits, sub-keys.
async function openClient(id) {
  let c, subs;
  try {
    [c, {sub_keys: subs}] =
        await Promise.all([api(`/client-keys/${id}`), api(`/client-keys/${id}/sub-keys`)]);
  } catch (e) {
    if (e.status === 404) {
      selectedClient = null;
      $('client-detail').replaceChildren();
      return;
    }
    throw e;
  }
  const path = `/client-keys/${id}`;
  const credits = c.parent_id ?
      h('p', {class: 'muted'}, 'A sub-key spends its parent\'s credits under its caps.') :
      h('form', {id: 'credits-form', class: 'row'},
        field(
            'credits-amount', 'Amount (USD)',
            {inputmode: 'decimal', required: true, placeholder: '10.00'}),
        h('div', {}, h('button', {type: 'submit', name: 'add'}, 'Add credits'), ' ',
          h('button', {type: 'submit', name: 'set', class: 'ghost'}, 'Set balance'), ' ',
          h('button', {type: 'button', id: 'credits-unlimited', class: 'ghost'},
            'Make unlimited')));
  const limits =
      h('form', {id: 'limits-form'},
        h('div', {class: 'row'},
          field('limit-models', 'Models (empty: every model)', {value: c.models.join(', ')}),
          field(
              'limit-rpm', 'Requests / minute',
              {type: 'number', min: 0, value: c.rpm ?? '', placeholder: 'no limit'}),
          field(
              'limit-tpm', 'Tokens / minute',
              {type: 'number', min: 0, value: c.tpm ?? '', placeholder: 'no limit'}),
          field(
              'limit-concurrency', 'Concurrent',
              {type: 'number', min: 0, value: c.concurrency ?? '', placeholder: 'no limit'}),
          field(
              'limit-expires', 'Expires (UTC date)',
              {type: 'date', value: c.expires_at ? c.expires_at.slice(0, 10) : ''})),
        h('button', {type: 'submit'}, 'Save limits'));
  const caps = (k) =>
      k.caps.map((cap) => `${cap.model}: ${usd(cap.spent_micros)} of ${usd(cap.cap_micros)}`)
          .join(', ') ||
      '–';
  const subTable = table(
      [['ID'], ['Name'], ['Key'], ['Status'], ['Caps (spent of cap)'], ['Actions']],
      subs.map(
          (k) =>
              [String(k.id), k.name, h('code', {}, k.hint),
               h('span', {class: `badge ${k.enabled ? 's-active' : 's-exhausted'}`},
                 k.enabled ? 'enabled' : 'disabled'),
               caps(k),
               h('div', {class: 'actions'},
                 h('button', {
                   type: 'button',
                   class: 'ghost small',
                   'aria-label': `Roll secret of ${k.name}`,
                   'data-action': 'roll',
                   'data-id': k.id
                 },
                   'Roll secret'),
                 h('button', {
                   type: 'button',
                   class: 'danger small',
                   'aria-label': `Delete ${k.name}`,
                   'data-action': 'delete',
                   'data-id': k.id
                 },
                   'Delete'))]));
  const subForm = c.parent_id ?
      null :
      h('form', {id: 'sub-form', class: 'row'}, field('sub-name', 'Sub-key name', {required: true}),
        field(
            'sub-caps', 'Caps (model=USD, comma-separated; * for any model)',
            {placeholder: 'gpt-4o=5, *=1'}),
        h('div', {}, h('button', {type: 'submit'}, 'Create sub-key')));
  $('client-detail')
      .replaceChildren(
          h('article', {class: 'card detail', 'aria-labelledby': 'detail-title'},
            h('h2', {id: 'detail-title'}, `${c.name} (client key ${c.id})`),
            h('p', {class: 'muted'},
              `Balance ${balanceText(c)} · ${c.usage.requests} requests, ` +
                  `${c.usage.input_tokens.toLocaleString()} in / ${
                      c.usage.output_tokens.toLocaleString()} out tokens, ` +
                  `${usd(c.usage.cost_micros)} all time · caps ${caps(c)}`),
            h('h3', {}, 'Credits'), credits, h('h3', {}, 'Limits'), limits,
            c.parent_id ? null : h('h3', {}, 'Sub-keys'), c.parent_id ? null : subTable, subForm));

  if (!c.parent_id) {
    $('credits-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const amount = $('credits-amount').value.trim();
      const add = ev.submitter?.name !== 'set';
      clientAction(
          () =>
              api(`${path}/credits`,
                  {method: 'POST', body: add ? {add_usd: amount} : {set_usd: amount}}),
          add ? `Added $${amount} to client key ${id}.` :
                `Client key ${id} balance set to $${amount}.`);
    });
    $('credits-unlimited')
        .addEventListener(
            'click',
            () => clientAction(
                () => api(`${path}/credits`, {method: 'POST', body: {set_usd: null}}),
                `Client key ${id} is unlimited.`));
    $('sub-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const capList =
          $('sub-caps').value.split(',').map((x) => x.trim()).filter(Boolean).map((x) => {
            const [model, amount] = x.split('=').map((y) => y.trim());
            return {model, cap_usd: amount};
          });
      clientAction(
          async () => showSecret(
              await api(
                  `${path}/sub-keys`,
                  {method: 'POST', body: {name: $('sub-name').value.trim(), caps: capList}}),
              'Created'),
          'Sub-key created.');
    });
  }
  $('limits-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const models = $('limit-models').value.split(',').map((x) => x.trim()).filter(Boolean);
    clientAction(
        () => api(`${path}/limits`, {
          method: 'POST',
          body: {
            models,
            rpm: numOrNull($('limit-rpm').value),
            tpm: numOrNull($('limit-tpm').value),
            concurrency: numOrNull($('limit-concurrency').value),
            expires_at: $('limit-expires').value || null
          }
        }),
        `Limits of client key ${id} saved.`);
  });
}

async function createClient(ev) {
  ev.preventDefault();
  const body = {name: $('client-name').value.trim()};
  if ($('client-credits').value.trim()) body.credits_usd = $('client-credits').value.trim();
  const models = $('client-models').value.split(',').map((x) => x.trim()).filter(Boolean);
  if (models.length) body.models = models;
  for (const f of ['rpm', 'tpm', 'concurrency']) {
    const v = numOrNull($(`client-${f}`).value);
    if (v !== null) body[f] = v;
  }
  if ($('client-expires').value) body.expires_at = $('client-expires').value;
  await clientAction(async () => {
    showSecret(await api('/client-keys', {method: 'POST', body}), 'Created');
    $('client-form').reset();
  }, `Client key ${body.name} created.`);
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
  overview: renderOverview,
  keys: renderKeys,
  rotations: renderRotations,
  spend: renderSpend,
  traffic: renderTraffic,
  clients: renderClients,
  usage: renderUsage,
  proxies: renderProxies,
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
for (const id of ['traffic-window', 'traffic-pool', 'traffic-client']) {
  $(id).addEventListener('change', renderTraffic);
}
$('client-form').addEventListener('submit', createClient);
$('clients-table').addEventListener('click', onClientsClick);
$('client-detail').addEventListener('click', onClientsClick);
$('copy-secret').addEventListener('click', copySecret);
$('hide-secret').addEventListener('click', hideSecret);
$('usage-filter').addEventListener('submit', (ev) => {
  ev.preventDefault();
  refresh();
});
window.addEventListener('hashchange', route);

if (adminKey) signIn(adminKey).catch((e) => signOut(e.message));

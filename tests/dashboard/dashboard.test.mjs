// The dashboard in a real browser: Debian's headless chromium driven by playwright-core, against a
// real `keygate serve` (started by tests/integration/dashboard_test.cc, which passes it in the
// environment). Signs in with an admin key, imports a backup key through the form, forces an
// upstream 401 on the active key (the stub answers 401 for keys named "-s401-") with a client
// request, and sees the rotation appear on the live timeline. Then creates a client key in the
// page (its secret shown once, with a copy button), sends a request with it through keygate (the
// stub upstream answers), and sees its usage in the server-side usage report; tops it up, rolls
// it, makes a sub-key. Every page passes axe-core with no serious or critical violation.
// Screenshots go to KEYGATE_ARTIFACTS (secrets masked).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  assert.ok(v, `${name} must be set (tests/integration/dashboard_test.cc sets it)`);
  return v;
};
const BASE = env('KEYGATE_URL');
const ADMIN_KEY = env('KEYGATE_ADMIN_KEY');
const CLIENT_KEY = env('KEYGATE_CLIENT_KEY');
const BACKUP_KEY = env('KEYGATE_BACKUP_KEY');
const ARTIFACTS = env('KEYGATE_ARTIFACTS');
const KEYGATE_LOG = env('KEYGATE_LOG');
const SECRETS = [ADMIN_KEY, CLIENT_KEY, BACKUP_KEY];
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let context;
let page;
let profile;
const urls = [];
const madeSecrets = [];
const consoleLines = [];

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  profile = mkdtempSync(join(tmpdir(), 'keygate-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  page = context.pages()[0] || await context.newPage();
  page.on('request', (r) => urls.push(r.url()));
  page.on('console', (m) => consoleLines.push(m.text()));
  page.on('pageerror', (e) => consoleLines.push('pageerror: ' + e.message));
});

after(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
});

// A full-page screenshot; the secret field is masked (an artifact never holds a secret).
async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true,
    mask: [page.locator('#new-secret')] });
}

// Sends one chat request with `key`; keygate learns a new client key when the admin API made it
// (it refreshes at once), so the first request is expected to pass. Returns the status.
async function chatWith(key) {
  const r = await fetch(BASE + '/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + key, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-sdk', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await r.text();
  return r.status;
}

// Polls `fn` until it returns true, for at most `ms` (keygate's refresh runs on another thread:
// there is nothing in this process to wait on).
async function eventually(fn, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
}

// Runs axe-core on the page as it is; fails on serious or critical violations.
async function checkA11y(label) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.slice(0, 3).map((n) => n.target.join(' ')) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${label}: axe violations ${JSON.stringify(bad, null, 2)}`);
}

async function show(view) {
  await page.evaluate((v) => { location.hash = v; }, view);
  await page.locator(`#view-${view}`).waitFor({ state: 'visible' });
  await page.locator('#status').filter({ hasText: 'Updated' }).waitFor();
}

test('dashboard: sign in, import a backup, see a rotation, accessible pages', async () => {
  const res = await page.goto(BASE + '/dashboard');
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /script-src 'self'/);
  await checkA11y('sign-in page');

  // A wrong key is refused with a message; the right one signs in.
  await page.fill('#admin-key', 'kga-not-a-real-key-000000000000');
  await page.click('#signin-form button[type=submit]');
  await page.locator('#signin-error').filter({ hasText: 'not accepted' }).waitFor();
  await page.fill('#admin-key', ADMIN_KEY);
  await page.click('#signin-form button[type=submit]');
  await page.locator('#who-name').filter({ hasText: 'signed in as dashboard-test' }).waitFor();
  await page.locator('#status').filter({ hasText: 'Updated' }).waitFor();
  await page.locator('#pools article').first().waitFor();
  await shot('01-overview');

  // Import a backup key through the form.
  await show('keys');
  await page.selectOption('#import-pool', 'main');
  await page.selectOption('#import-state', 'backup');
  await page.fill('#import-keys', BACKUP_KEY);
  await page.click('#import-form button[type=submit]');
  await page.locator('#import-result').filter({ hasText: 'Imported 1 key(s) into main as backup' }).waitFor();
  assert.equal(await page.inputValue('#import-keys'), '', 'the form forgets the key once stored');
  await page.locator('#keys-table td', { hasText: 'backup' }).first().waitFor();
  await shot('02-keys-imported');

  // The live timeline has no rotation yet; a client request meets the dead key (401 upstream)
  // and keygate rotates it to the backup; the timeline shows it without a reload.
  await show('rotations');
  assert.equal(await page.locator('#timeline li[data-rotation-id]').count(), 0);
  const chat = await fetch(BASE + '/v1/chat/completions', {
    method: 'POST',
    headers: { Authorization: 'Bearer ' + CLIENT_KEY, 'Content-Type': 'application/json' },
    body: JSON.stringify({ model: 'gpt-sdk', messages: [{ role: 'user', content: 'hi' }] }),
  });
  await chat.text();
  const item = page.locator('#timeline li[data-rotation-id]').first();
  await item.waitFor({ timeout: 20000 });
  const text = await item.innerText();
  // Key 1 (the dead one) was replaced by the backup imported above (the newest key id).
  assert.match(text, /key 1 → key \d+ rotated/);
  await shot('03-rotation-timeline');

  // Client keys: create one in the page; its secret is shown once, with a copy button.
  page.on('dialog', (d) => d.accept());
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  await show('clients');
  await checkA11y('clients');
  await page.fill('#client-name', 'browser-client');
  await page.fill('#client-credits', '5');
  await page.fill('#client-rpm', '600');
  await page.click('#client-form button[type=submit]');
  await page.locator('#secret-once').waitFor({ state: 'visible' });
  const secret = await page.inputValue('#new-secret');
  assert.match(secret, /^kg-[0-9a-f]{64}$/);
  madeSecrets.push(secret);
  await page.click('#copy-secret');
  await page.locator('#copy-result').filter({ hasText: 'Copied' }).waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), secret);
  await checkA11y('client key created, secret shown once');
  await shot('04-client-key-created');
  await page.click('#hide-secret');
  assert.equal(await page.locator('#secret-once').isVisible(), false);
  assert.ok(!(await page.content()).includes(secret), 'the secret is gone from the page once hidden');
  const row = page.locator('#clients-table tr', { hasText: 'browser-client' });
  await row.waitFor();
  const rowText = await row.innerText();
  assert.ok(rowText.includes('kg-…' + secret.slice(-4)), rowText);
  assert.ok(rowText.includes('$5.00'), rowText);
  assert.ok(rowText.includes('600 rpm'), rowText);
  const clientId = Number((await row.locator('td').first().innerText()).trim());

  // The key works through the gateway (the stub upstream answers) ...
  assert.ok(await eventually(async () => (await chatWith(secret)) === 200), 'the new client key is accepted');
  // ... and its usage shows in the usage report, summed by the server.
  await show('usage');
  const usageRow = page.locator('#usage-clients tr', { hasText: 'browser-client' });
  assert.ok(await eventually(async () => {
    await page.click('#usage-filter button[type=submit]');
    await page.locator('#status').filter({ hasText: 'Updated' }).waitFor();
    return (await usageRow.count()) > 0;
  }), 'the usage of the new key appears in the report');
  assert.match(await usageRow.innerText(), /browser-client \(\d+\)\s+1\s/);
  await page.locator('#usage-chart svg rect').first().waitFor();
  await shot('05-usage-report');
  await checkA11y('usage report');

  // ... and in the Traffic page, bucketed by the server over the whole store: the key's one
  // request in the last 15 minutes, and every request sent so far in the unfiltered view.
  await show('traffic');
  await page.selectOption('#traffic-window', '15m');
  await page.locator('#traffic-client option', { hasText: 'browser-client' }).waitFor({ state: 'attached' });
  await page.selectOption('#traffic-client', String(clientId));
  const trafficCell = page.locator('#traffic-total td').first();
  await trafficCell.filter({ hasText: /^1$/ }).waitFor();
  await page.locator('#chart-requests svg polyline').first().waitFor();
  await checkA11y('traffic, one client key');
  await shot('05b-traffic');
  await page.selectOption('#traffic-client', '');
  assert.ok(await eventually(async () => Number((await trafficCell.innerText()).trim()) >= 2),
    'the unfiltered view counts the earlier request too');

  // Manage it: top up, roll (a new secret, once; the old one stops), a sub-key with a cap.
  await show('clients');
  await page.click(`#clients-table button[data-action=manage][data-id="${clientId}"]`);
  await page.locator('#detail-title').filter({ hasText: 'browser-client' }).waitFor();
  const paid = await page.locator('#client-detail p.muted').first().innerText();
  assert.match(paid, /1 requests/);
  await page.fill('#credits-amount', '2.5');
  await page.click('#credits-form button[name=add]');
  await page.locator('#client-result').filter({ hasText: 'Added $2.5' }).waitFor();
  await page.locator('#clients-table tr', { hasText: 'browser-client' }).filter({ hasText: '$7.' }).waitFor();
  // The detail panel is drawn again after the table (clientAction): fill its sub-key form only
  // once the new panel is there, or the redraw replaces the filled form with an empty one and the
  // submit never leaves the browser (seen once in CI, on a loaded machine).
  await page.locator('#client-detail p.muted', { hasText: 'Balance $7.' }).waitFor();
  await page.fill('#sub-name', 'browser-friend');
  await page.fill('#sub-caps', 'gpt-sdk=1');
  await page.click('#sub-form button[type=submit]');
  await page.locator('#secret-once').waitFor({ state: 'visible' });
  madeSecrets.push(await page.inputValue('#new-secret'));
  await page.locator('#client-detail td', { hasText: 'gpt-sdk: $0.00 of $1.00' }).waitFor();
  await checkA11y('client key details');
  await shot('06-client-key-details');
  await page.click('#hide-secret');
  await page.click(`#clients-table button[data-action=roll][data-id="${clientId}"]`);
  await page.locator('#secret-once').waitFor({ state: 'visible' });
  const rolled = await page.inputValue('#new-secret');
  assert.match(rolled, /^kg-[0-9a-f]{64}$/);
  assert.notEqual(rolled, secret);
  madeSecrets.push(rolled);
  await page.click('#hide-secret');
  assert.ok(await eventually(async () => (await chatWith(secret)) === 401), 'the rolled-over secret stops');
  assert.equal(await chatWith(rolled), 200);

  // Spend against budget: keys by band per pool, a bar per key.
  await show('spend');
  await page.locator('#spend-chart g[data-key-id]').first().waitFor();
  const bars = await page.locator('#spend-chart g[data-key-id]').count();
  assert.equal(bars, 3, 'three keys with a budget');
  assert.match(await page.locator('#spend-pools').innerText(), /95 % and over: 1/);
  assert.match(await page.locator('#spend-chart').innerText(), /without a known budget/);
  await shot('07-spend');

  // Every page: rendered, and accessible.
  for (const view of ['overview', 'keys', 'rotations', 'spend', 'traffic', 'clients', 'usage', 'proxies']) {
    await show(view);
    await shot(`10-${view}`);
    await checkA11y(view);
  }

  // No secret appeared in a URL or the console, nor a client key made here in keygate's log;
  // signing out forgets the admin key.
  const log = readFileSync(KEYGATE_LOG, 'utf8');
  for (const s of madeSecrets) assert.ok(!log.includes(s), 'keygate\'s log held a client key');
  for (const s of [...SECRETS, ...madeSecrets]) {
    assert.ok(!urls.some((u) => u.includes(s)), 'a URL held a secret');
    assert.ok(!consoleLines.some((l) => l.includes(s)), 'the console held a secret');
  }
  await page.click('#sign-out');
  await page.locator('#signin').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

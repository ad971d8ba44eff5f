// The dashboard in a real browser: Debian's headless chromium driven by playwright-core, against a
// real `keygate serve` (started by tests/integration/dashboard_test.cc, which passes it in the
// environment). Signs in with an admin key, imports a backup key through the form, forces an
// upstream 401 on the active key (the stub answers 401 for keys named "-s401-") with a client
// request, and sees the rotation appear on the live timeline. Every page passes axe-core with no
// serious or critical violation. Screenshots go to KEYGATE_ARTIFACTS.
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
const SECRETS = [ADMIN_KEY, CLIENT_KEY, BACKUP_KEY];
const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

let context;
let page;
let profile;
const urls = [];
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

async function shot(name) {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
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
  assert.match(text, /key 1/);
  assert.match(text, /key 2/);
  await shot('03-rotation-timeline');

  // Every page: rendered, and accessible.
  for (const view of ['overview', 'keys', 'rotations', 'spend', 'traffic', 'usage', 'proxies']) {
    await show(view);
    await shot(`10-${view}`);
    await checkA11y(view);
  }

  // The admin key never appeared in a URL or the console; signing out forgets it.
  for (const s of SECRETS) {
    assert.ok(!urls.some((u) => u.includes(s)), 'a URL held a secret');
    assert.ok(!consoleLines.some((l) => l.includes(s)), 'the console held a secret');
  }
  await page.click('#sign-out');
  await page.locator('#signin').waitFor({ state: 'visible' });
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);
});

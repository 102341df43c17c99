// The dashboard in a real browser: Debian's chromium, headless, driven by puppeteer-core (no browser
// download). Builds the demo store, serves it, and walks the pages as a catalogue manager would;
// then, on a server that requires a token, checks that a play without it is refused visibly and
// stores nothing, and that with it the play goes through. Screenshots go to the output folder.
//
//   node tests/browser/dashboard_test.mjs MOSAIC_BINARY OUTPUT_DIR
//
// Exits 0 on success, 1 on a failure, 77 (skipped) when chromium is not installed.
import assert from 'node:assert/strict';
import {spawn, spawnSync} from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';

const [mosaic, outDir] = process.argv.slice(2);
if (!mosaic || !outDir) {
  console.error('usage: dashboard_test.mjs MOSAIC_BINARY OUTPUT_DIR');
  process.exit(2);
}
const chromium = process.env.MOSAIC_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(chromium)) {
  console.log(`SKIPPED: ${chromium} is not installed (scripts/setup installs Debian's chromium)`);
  process.exit(77);
}
const {default: puppeteer} = await import('puppeteer-core');

fs.rmSync(outDir, {recursive: true, force: true});
fs.mkdirSync(outDir, {recursive: true});
const demoDir = path.join(outDir, 'demo');
const store = path.join(demoDir, 'store');
const servers = [];
let browser = null;

function step(name) { console.log(`-- ${name}`); }

// Starts `mosaic serve` on a free port; resolves to its base URL once it listens.
function serve(extra = []) {
  const child = spawn(mosaic, ['--store', store, 'serve', '--port', '0', '--json', ...extra],
                      {stdio: ['ignore', 'pipe', 'inherit']});
  servers.push(child);
  return new Promise((resolve, reject) => {
    const lines = readline.createInterface({input: child.stdout});
    lines.once('line', (line) => resolve(JSON.parse(line).listening));
    child.once('exit', (code) => reject(new Error(`mosaic serve exited with ${code}`)));
  });
}

async function stop(child) {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

async function shoot(page, name) {
  await page.screenshot({path: path.join(outDir, `${name}.png`), fullPage: true});
}

// Waits for the page's router to finish rendering `name`.
async function ready(page, name) {
  await page.waitForFunction((n) => document.body.dataset.ready === n, {timeout: 20000}, name);
}

async function texts(page, selector) {
  return page.$$eval(selector, (nodes) => nodes.map((n) => n.textContent.trim()));
}

// Plays of the item posted through the server (its exposure counter).
async function itemPlays(base, item) {
  const res = await fetch(`${base}/item?item=${encodeURIComponent(item)}`);
  return (await res.json()).exposure.plays;
}

async function userTotal(base, user) {
  const res = await fetch(`${base}/user?user=${encodeURIComponent(user)}&limit=1000`);
  const body = await res.json();
  return body.items.reduce((sum, item) => sum + item.plays, 0);
}

try {
  step('mosaic demo (builds the store and trains model v1)');
  const demo = spawnSync(mosaic, ['demo', '--dir', demoDir], {encoding: 'utf8'});
  assert.equal(demo.status, 0, demo.stderr);
  assert.match(demo.stdout, /dashboard: http:\/\/127\.0\.0\.1:8080\//, 'mosaic demo ends with the dashboard address');

  let base = await serve();
  browser = await puppeteer.launch({
    executablePath: chromium,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run'],
  });
  const page = await browser.newPage();
  await page.setViewport({width: 1280, height: 900});
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(String(e)));

  step('catalogue: search "Debussy"');
  await page.goto(base + '/', {waitUntil: 'load'});
  await ready(page, 'catalogue');
  await page.type('#search', 'Debussy');
  await page.click('#search-go');
  await page.waitForFunction(() => location.hash.includes('q=Debussy') && document.body.dataset.ready === 'catalogue' &&
                             document.querySelectorAll('#catalogue-results li[data-key]').length > 0, {timeout: 20000});
  const found = await texts(page, '#catalogue-results li[data-key] a');
  assert.ok(found.includes('Arabesque No. 1'), `search results: ${found.join(', ')}`);
  assert.ok(found.includes('Clair de lune'), `search results: ${found.join(', ')}`);
  await shoot(page, 'catalogue');

  step('item: open "Arabesque No. 1"');
  await Promise.all([page.waitForFunction(() => location.hash.startsWith('#/item/')),
                     page.evaluate(() => [...document.querySelectorAll('#catalogue-results a')]
                       .find((a) => a.textContent === 'Arabesque No. 1').click())]);
  await ready(page, 'item');
  assert.equal((await texts(page, '#item-title'))[0].startsWith('Arabesque No. 1'), true);
  const audience = await page.$$eval('#audience > li', (items) => items.map((li) => ({
    user: li.dataset.key, reasons: [...li.querySelectorAll('.reasons li')].map((r) => r.textContent)})));
  assert.ok(audience.length > 0, 'the item page lists an audience');
  assert.ok(audience[0].reasons.some((r) => /^played .+, which shares /.test(r)), `first listener's reasons: ${audience[0].reasons}`);
  const graphNodes = await page.$$eval('#kg-graph circle', (c) => c.map((n) => n.dataset.kind));
  const relations = await texts(page, '#kg-graph text.relation');
  assert.ok(graphNodes.length >= 5 && graphNodes.includes('entity'), `KG graph nodes: ${graphNodes.length}`);
  assert.ok(relations.includes('artist'), `KG relations drawn: ${relations}`);
  await shoot(page, 'item');

  step('item: walk the KG to the artist');
  const centreBefore = await page.$eval('#kg-graph', (s) => s.getAttribute('aria-label'));
  await page.evaluate(() => {
    const artist = [...document.querySelectorAll('#kg-graph circle')].find((c) => c.querySelector('title').textContent.startsWith('Claude Debussy'));
    artist.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  });
  await page.waitForFunction((before) => document.querySelector('#kg-graph').getAttribute('aria-label') !== before, {timeout: 10000}, centreBefore);
  assert.match(await page.$eval('#kg-graph', (s) => s.getAttribute('aria-label')), /Claude Debussy/);
  await shoot(page, 'item-walked');

  step('item: play it for a listener and see their list change');
  const listener = audience.find((a) => a.user)?.user;
  const playsBefore = await userTotal(base, listener);
  await page.$eval('#play-user', (input, user) => { input.value = user; }, listener);
  await page.click('#play');
  await page.waitForSelector('#play-outcome', {timeout: 20000});
  assert.equal(await page.$eval('#play-outcome', (n) => n.dataset.changed), 'true',
               await page.$eval('#play-outcome', (n) => n.textContent));
  assert.equal(await userTotal(base, listener), playsBefore + 1, 'the play was stored');
  await shoot(page, 'item-played');

  step('user: history, recommendations with explanations, new only');
  await page.goto(`${base}/#/user/${encodeURIComponent(listener)}`, {waitUntil: 'load'});
  await ready(page, 'user');
  assert.ok((await texts(page, '#history li a')).includes('Arabesque No. 1'), 'the play shows in the history');
  assert.ok((await page.$$('#recommendations > li')).length > 0);
  assert.ok((await texts(page, '#recommendations .reasons li')).length > 0, 'recommendations come with explanations');
  await shoot(page, 'user');

  step('model: versions');
  await page.goto(`${base}/#/model`, {waitUntil: 'load'});
  await ready(page, 'model');
  const versionRows = await texts(page, '#versions tbody tr');
  assert.ok(versionRows.length >= 1 && versionRows[0].includes('current'), versionRows.join(' | '));
  await shoot(page, 'model');

  step('health: charts from /metrics');
  await page.goto(`${base}/#/health`, {waitUntil: 'load'});
  await ready(page, 'health');
  for (let i = 0; i < 4; ++i) await fetch(`${base}/recommend?user=${encodeURIComponent(listener)}`);
  await page.waitForFunction(() => [...document.querySelectorAll('svg.chart')].length === 3 &&
                             [...document.querySelectorAll('svg.chart')].every((c) => Number(c.dataset.longest) >= 3), {timeout: 20000});
  assert.ok((await page.$$('svg.chart polyline')).length >= 3);
  await shoot(page, 'health');
  assert.deepEqual(pageErrors, [], 'no script errors');

  step('a server that requires a token');
  await stop(servers[0]);
  const token = 'dashboard-test-token';
  fs.writeFileSync(path.join(outDir, 'token'), token + '\n');
  base = await serve(['--token-file', path.join(outDir, 'token')]);
  const guarded = await browser.newPage();  // a new tab: no token kept
  await guarded.setViewport({width: 1280, height: 900});
  await guarded.goto(`${base}/#/catalogue?q=Arabesque`, {waitUntil: 'load'});
  await ready(guarded, 'catalogue');
  await guarded.evaluate(() => [...document.querySelectorAll('#catalogue-results a')].find((a) => a.textContent === 'Arabesque No. 1').click());
  await ready(guarded, 'item');
  const guardedBefore = await itemPlays(base, 'Arabesque No. 1');
  await guarded.$eval('#play-user', (input, user) => { input.value = user; }, listener);
  await guarded.click('#play');
  await guarded.waitForSelector('#play-error', {timeout: 20000});
  assert.match(await guarded.$eval('#play-error', (n) => n.textContent), /401/);
  assert.equal(await guarded.$eval('#auth-banner', (n) => n.hidden), false, 'the token banner is shown');
  assert.match(await guarded.$eval('#auth-message', (n) => n.textContent), /401 Unauthorized/);
  assert.equal(await itemPlays(base, 'Arabesque No. 1'), guardedBefore, 'nothing was stored without the token');
  await shoot(guarded, 'token-refused');

  await guarded.type('#token', token);
  await guarded.click('#token-save');
  await guarded.click('#play');
  await guarded.waitForSelector('#play-outcome', {timeout: 20000});
  assert.equal(await itemPlays(base, 'Arabesque No. 1'), guardedBefore + 1, 'with the token the play is stored');
  assert.equal(await guarded.$eval('#auth-banner', (n) => n.hidden), true, 'the banner goes once a write succeeds');
  assert.equal(await guarded.evaluate(() => sessionStorage.getItem('mosaic.token')), token, 'the token is kept for the tab');
  await shoot(guarded, 'token-accepted');
  console.log(`dashboard: every step passed; screenshots in ${outDir}`);
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
  for (const child of servers) await stop(child);
}

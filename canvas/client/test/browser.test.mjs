// The demo canvas in a real browser: two people (two Chromium contexts, so
// two separate storages and connections) on one canvas served by canvasd.
//
//   CANVASD_URL=http://127.0.0.1:8080 node --test test/browser.test.mjs
//
// go test ./tests -run TestBrowser builds and starts canvasd, installs
// chromium when missing, and runs this file.
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {isDeepStrictEqual} from 'node:util';
import {chromium} from 'playwright-core';

const BASE = (process.env.CANVASD_URL ?? '').replace(/\/+$/, '');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const WAIT = 10_000;
const skip = BASE ? false : 'CANVASD_URL not set';

let browser;
let canvasID;
let alice;
let bob;

async function person(name) {
  const context = await browser.newContext({viewport: {width: 1200, height: 800}});
  const page = await context.newPage();
  page.on('pageerror', (err) => console.error(`[${name}] page error: ${err.stack ?? err}`));
  await page.goto(`${BASE}/c/${canvasID}#name=${name}`);
  await page.waitForFunction(() => window.canvasd?.client);
  await waitStatus(page, 'Live');
  return {name, context, page};
}

function waitStatus(page, text) {
  return page.waitForFunction((t) => document.querySelector('[data-testid="status"]')?.textContent.startsWith(t), text, {timeout: WAIT});
}

const node = (p, id) => p.page.locator(`[data-node-id="${id}"]`);
const edgeCount = (p) => p.page.locator('[data-edge-id]').count();

/** Every key and value of a person's Replicache, and their unsent mutations. */
function state(p) {
  return p.page.evaluate(async () => {
    const c = window.canvasd.client;
    const entries = await c.query((tx) => tx.scan().entries().toArray());
    return {kv: Object.fromEntries(entries), pending: (await c.experimentalPendingMutations()).length};
  });
}

function mutate(p, name, args) {
  return p.page.evaluate(([n, a]) => window.canvasd.client.mutate[n](a), [name, args]);
}

async function center(locator) {
  const b = await locator.boundingBox();
  return {x: b.x + b.width / 2, y: b.y + b.height / 2};
}

before(async () => {
  if (skip) return;
  browser = await chromium.launch({executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking']});
  canvasID = `br${Date.now().toString(36)}`;
  const res = await fetch(`${BASE}/api/canvases`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({id: canvasID, title: 'Browser test'})});
  assert.equal(res.status, 201);
  [alice, bob] = await Promise.all([person('Alice'), person('Bob')]);
});

after(async () => {
  await browser?.close();
});

test('a card created in one browser appears in the other', {skip}, async () => {
  const before = await alice.page.locator('[data-node-id]').count();
  await alice.page.getByTestId('add-node').click();
  await alice.page.waitForFunction((n) => document.querySelectorAll('[data-node-id]').length === n + 1, before);
  const id = await alice.page.locator('.node.selected').getAttribute('data-node-id');
  await node(bob, id).waitFor({timeout: WAIT});
  assert.equal(await node(bob, id).locator('.node-title').textContent(), 'New note');

  // Double-click on empty space makes a card there and opens its editor.
  const board = await alice.page.getByTestId('board').boundingBox();
  await alice.page.mouse.dblclick(board.x + 150, board.y + board.height - 150);
  const title = alice.page.getByTestId('edit-title');
  await title.waitFor();
  await title.fill('Written by Alice');
  await alice.page.getByTestId('edit-body').fill('with a body');
  await title.press('Enter');
  await bob.page.getByText('Written by Alice').waitFor({timeout: WAIT});
  await bob.page.getByText('with a body').waitFor({timeout: WAIT});
});

test('a card dragged in one browser moves in the other', {skip}, async () => {
  await mutate(alice, 'createNode', {id: 'drag', kind: 'note', x: -300, y: -200, title: 'Drag me'});
  await node(alice, 'drag').waitFor();
  await node(bob, 'drag').waitFor({timeout: WAIT});
  const from = await center(node(alice, 'drag').locator('.node-title'));
  await alice.page.mouse.move(from.x, from.y);
  await alice.page.mouse.down();
  await alice.page.mouse.move(from.x + 80, from.y + 40, {steps: 8});
  // Moves go out while the drag is still on.
  await bob.page.waitForFunction(() => Number(document.querySelector('[data-node-id="drag"]').dataset.x) > -300, null, {timeout: WAIT});
  await alice.page.mouse.move(from.x + 160, from.y + 60, {steps: 8});
  await alice.page.mouse.up();
  const want = await alice.page.evaluate(() => window.canvasd.client.query((tx) => tx.get('node/drag')));
  assert.ok(want.x > -300 && want.y > -200, `moved: ${JSON.stringify(want)}`);
  await bob.page.waitForFunction(
    ([x, y]) => {
      const el = document.querySelector('[data-node-id="drag"]');
      return Number(el.dataset.x) === x && Number(el.dataset.y) === y;
    },
    [want.x, want.y],
    {timeout: WAIT},
  );
});

test('links are drawn with arrows; a link closing a cycle is refused with a message', {skip}, async () => {
  await mutate(alice, 'createNode', {id: 'c1', kind: 'note', x: -300, y: 60, w: 160, h: 80, title: 'One'});
  await mutate(alice, 'createNode', {id: 'c2', kind: 'note', x: -60, y: 60, w: 160, h: 80, title: 'Two'});
  await node(alice, 'c2').waitFor();
  const link = async (p, from, to) => {
    await node(p, from).hover();
    const h = await center(node(p, from).getByTestId('handle'));
    await p.page.mouse.move(h.x, h.y);
    await p.page.mouse.down();
    const t = await center(node(p, to));
    await p.page.mouse.move(t.x, t.y, {steps: 6});
    await p.page.mouse.up();
  };
  const edgesBefore = await edgeCount(alice);
  await link(alice, 'c1', 'c2');
  await alice.page.waitForFunction((n) => document.querySelectorAll('[data-edge-id]').length === n + 1, edgesBefore);
  await bob.page.waitForFunction((n) => document.querySelectorAll('[data-edge-id]').length === n + 1, edgesBefore, {timeout: WAIT});
  assert.equal(await alice.page.locator('[data-edge-id] path.edge').last().getAttribute('marker-end'), 'url(#arrow)');

  // Bob tries two → one: a cycle.
  await node(bob, 'c2').waitFor();
  await link(bob, 'c2', 'c1');
  const toast = bob.page.getByTestId('toast');
  await toast.waitFor({state: 'visible'});
  assert.match(await toast.textContent(), /loop|cycle/i);
  assert.equal(await edgeCount(bob), edgesBefore + 1);
  const s = await state(bob);
  assert.ok(!Object.values(s.kv).some((v) => v && v.from === 'c2' && v.to === 'c1'), 'no c2 → c1 edge');
});

test('Delete removes a card and its links in both browsers', {skip}, async () => {
  const edges = await edgeCount(bob);
  assert.ok(edges >= 1);
  await node(alice, 'c1').locator('.node-title').click();
  await alice.page.keyboard.press('Delete');
  await node(alice, 'c1').waitFor({state: 'detached'});
  await node(bob, 'c1').waitFor({state: 'detached', timeout: WAIT});
  await bob.page.waitForFunction((n) => document.querySelectorAll('[data-edge-id]').length === n - 1, edges, {timeout: WAIT});
  const s = await state(bob);
  assert.ok(!Object.values(s.kv).some((v) => v && (v.from === 'c1' || v.to === 'c1')), 'edges of c1 gone');
});

test("one browser shows the other's cursor with its name", {skip}, async () => {
  const board = await alice.page.getByTestId('board').boundingBox();
  await alice.page.mouse.move(board.x + 400, board.y + 300);
  await alice.page.mouse.move(board.x + 420, board.y + 320, {steps: 3});
  const cursor = bob.page.locator('[data-testid="cursor"]:not([hidden])', {hasText: 'Alice'});
  await cursor.waitFor({timeout: WAIT});
  const t0 = await cursor.evaluate((el) => el.style.transform);
  await alice.page.mouse.move(board.x + 500, board.y + 350, {steps: 3});
  await bob.page.waitForFunction((t) => document.querySelector('[data-testid="cursor"]:not([hidden])')?.style.transform !== t, t0, {timeout: WAIT});
});

test('offline edits are kept, counted, and converge once back online', {skip}, async () => {
  await bob.context.setOffline(true);
  await waitStatus(bob.page, 'Offline');
  await mutate(bob, 'createNode', {id: 'off1', kind: 'note', x: 200, y: -250, title: 'Made offline'});
  await mutate(bob, 'moveNode', {id: 'drag', x: 33, y: 44});
  await mutate(alice, 'updateNode', {id: 'c2', title: 'Renamed online'});
  await node(bob, 'off1').waitFor();
  await bob.page.waitForFunction(() => /unsent/.test(document.querySelector('[data-testid="status"]').textContent), null, {timeout: WAIT});
  assert.ok(Number(await bob.page.getByTestId('status').getAttribute('data-pending')) >= 2);
  // Alice does not see Bob's offline edits.
  assert.equal(await node(alice, 'off1').count(), 0);

  await bob.context.setOffline(false);
  await waitStatus(bob.page, 'Live');
  await node(alice, 'off1').waitFor({timeout: WAIT});
  const deadline = Date.now() + WAIT;
  let a;
  let b;
  for (;;) {
    [a, b] = await Promise.all([state(alice), state(bob)]);
    if (a.pending === 0 && b.pending === 0 && isDeepStrictEqual(a.kv, b.kv)) break;
    assert.ok(Date.now() < deadline, `not converged: ${JSON.stringify({a, b})}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(a.kv['node/drag'].x, 33);
  assert.equal(a.kv['node/c2'].title, 'Renamed online');
  await bob.page.waitForFunction(() => document.querySelector('[data-testid="status"]').dataset.pending === '0', null, {timeout: WAIT});
});

test('with authentication on, the page asks for a token, or takes it from #token=', {skip: skip || (process.env.CANVASD_AUTH_URL ? false : 'CANVASD_AUTH_URL not set')}, async () => {
  const authBase = process.env.CANVASD_AUTH_URL.replace(/\/+$/, '');
  const tok = process.env.CANVASD_TOKEN;
  const ctx1 = await browser.newContext({viewport: {width: 1100, height: 700}});
  const ctx2 = await browser.newContext({viewport: {width: 1100, height: 700}});
  try {
    // No token: the list answers 401 and the page asks for one.
    const p1 = await ctx1.newPage();
    await p1.goto(`${authBase}/`);
    const input = p1.getByTestId('token-input');
    await input.waitFor({timeout: WAIT});
    await input.fill(tok);
    await input.press('Enter');
    await p1.getByTestId('canvas-list').waitFor({timeout: WAIT});
    await p1.getByTestId('new-title').fill('Signed in');
    await p1.getByTestId('create-canvas').click();
    await p1.waitForURL(/\/c\/[A-Za-z0-9_-]+$/, {timeout: WAIT});
    await waitStatus(p1, 'Live');
    const id = new URL(p1.url()).pathname.split('/').pop();
    await p1.getByTestId('add-node').click();
    await p1.locator('[data-node-id]').first().waitFor();

    // With #token= the second person goes straight in; the token leaves the address.
    const p2 = await ctx2.newPage();
    await p2.goto(`${authBase}/c/${id}#token=${encodeURIComponent(tok)}&name=Carol`);
    await p2.locator('[data-node-id]').first().waitFor({timeout: WAIT});
    await waitStatus(p2, 'Live');
    assert.ok(!p2.url().includes('token'), `token left in the address: ${p2.url()}`);
    assert.equal(await p2.getByTestId('canvas-title').inputValue(), 'Signed in');
  } finally {
    await ctx1.close();
    await ctx2.close();
  }
});

// Renders two people editing one canvas and saves a screenshot of one of
// them: node test/screenshot.mjs http://127.0.0.1:8080 out.png
// (needs a running canvasd and chromium).
import {chromium} from 'playwright-core';

const [base = 'http://127.0.0.1:8080', out = 'screenshot.png'] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM ?? '/usr/bin/chromium';
const browser = await chromium.launch({executablePath, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking']});
try {
  const id = `tour${Date.now().toString(36)}`;
  const res = await fetch(`${base}/api/canvases`, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify({id, title: 'Launch plan'})});
  if (!res.ok) throw new Error(`create canvas: ${res.status}`);
  const open = async (name) => {
    const ctx = await browser.newContext({viewport: {width: 1280, height: 760}, deviceScaleFactor: 1});
    const page = await ctx.newPage();
    await page.goto(`${base}/c/${id}#name=${encodeURIComponent(name)}`);
    await page.waitForFunction(() => window.canvasd?.client);
    return page;
  };
  const ada = await open('Ada Lovelace');
  const grace = await open('Grace Hopper');
  await ada.evaluate(async () => {
    const m = window.canvasd.client.mutate;
    const nodes = [
      ['research', 0, 0, 'User research', 'Interview 12 teams that sketch systems on whiteboards today.'],
      ['proto', 300, -90, 'Prototype', 'Live cursors, cards and arrows, synced through canvasd.'],
      ['sync', 300, 110, 'Sync server', 'Per-canvas versions, pokes over SSE, PostgreSQL.'],
      ['beta', 610, 10, 'Private beta', 'Invite the interviewed teams; watch the first sessions.'],
      ['launch', 910, 10, 'Launch', ''],
    ];
    for (const [nid, x, y, title, body] of nodes) await m.createNode({id: nid, kind: 'note', x, y, w: 220, h: body ? 130 : 64, title, body});
    for (const [eid, from, to] of [['e1', 'research', 'proto'], ['e2', 'research', 'sync'], ['e3', 'proto', 'beta'], ['e4', 'sync', 'beta'], ['e5', 'beta', 'launch']]) {
      await m.createEdge({id: eid, from, to});
    }
  });
  for (const page of [ada, grace]) {
    // Reopened, so that the view fits the whole canvas.
    await page.waitForSelector('[data-node-id="launch"]');
    await page.reload();
    await page.waitForSelector('[data-node-id="launch"]');
  }
  // Grace selects "Sync server" and points at it; Ada moves over "Prototype".
  const box = async (page, nid) => page.locator(`[data-node-id="${nid}"]`).boundingBox();
  const g = await box(grace, 'sync');
  await grace.mouse.click(g.x + 60, g.y + 30);
  await grace.mouse.move(g.x + 150, g.y + 75, {steps: 4});
  const a = await box(ada, 'beta');
  await ada.mouse.click(a.x + 40, a.y + 20);
  await ada.mouse.move(a.x + 120, a.y + 150, {steps: 4});
  await ada.waitForSelector('[data-testid="cursor"]:not([hidden])', {timeout: Number(process.env.CURSOR_WAIT_MS ?? 10000)}).catch((err) => console.error(`no cursor shown: ${err.message}`));
  await ada.waitForTimeout(400);
  await ada.screenshot({path: out});
} finally {
  await browser.close();
}

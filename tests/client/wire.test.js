// The SSE poke stream and the pull envelope, seen on the wire.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  needsServer,
  createCanvas,
  canvasURL,
  withClients,
  waitFor,
  waitKey,
  node,
  uid,
} from './helpers.js';

const T = {...needsServer, timeout: 60_000};

/** Opens a raw SSE stream with fetch and parses its events as they arrive. */
async function openRawSSE(url, headers = {}) {
  const ac = new AbortController();
  const res = await fetch(url, {
    headers: {Accept: 'text/event-stream', ...headers},
    signal: ac.signal,
  });
  const events = [];
  const comments = [];
  let buf = '';
  const pump = (async () => {
    if (!res.ok || !res.body) return;
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const {value, done} = await reader.read();
      if (done) return;
      buf += value.replace(/\r\n/g, '\n');
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const ev = {event: 'message', id: undefined, data: []};
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            comments.push(line.slice(1).trim());
            continue;
          }
          const c = line.indexOf(':');
          const field = c < 0 ? line : line.slice(0, c);
          let v = c < 0 ? '' : line.slice(c + 1);
          if (v.startsWith(' ')) v = v.slice(1);
          if (field === 'event') ev.event = v;
          else if (field === 'data') ev.data.push(v);
          else if (field === 'id') ev.id = v;
        }
        if (ev.data.length === 0) continue; // comment-only block
        events.push({...ev, data: ev.data.join('\n')});
      }
    }
  })().catch((err) => {
    if (!ac.signal.aborted) throw err;
  });
  return {
    res,
    events,
    comments,
    pokes: () => events.filter((e) => e.event === 'poke'),
    async close() {
      ac.abort();
      await pump.catch(() => {});
    },
  };
}

async function rawPull(canvasID, clientGroupID, cookie) {
  const res = await fetch(`${canvasURL(canvasID)}/replicache/pull`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({
      profileID: 'p-rawpull',
      clientGroupID,
      cookie,
      pullVersion: 1,
      schemaVersion: '',
    }),
  });
  const text = await res.text();
  assert.equal(res.status, 200, `pull: status ${res.status}, body ${text}`);
  return JSON.parse(text);
}

test('(h) SSE headers, and a poke after another client pushes', T, async () => {
  const cv = await createCanvas('sse');
  const sse = await openRawSSE(`${canvasURL(cv.id)}/events`);
  try {
    assert.equal(sse.res.status, 200);
    assert.match(sse.res.headers.get('content-type') ?? '', /^text\/event-stream\b/);
    assert.match(sse.res.headers.get('cache-control') ?? '', /no-cache/);
    assert.equal(sse.res.headers.get('x-accel-buffering'), 'no');

    await withClients(async ({open}) => {
      const a = open(cv.id, 'A', {sse: false}); // the pusher has no stream of its own
      const b = open(cv.id, 'B'); // eventsource-package listener
      await b.opened;
      await a.rep.mutate.createNode({id: 'n1', kind: 'note', x: 1, y: 2});

      // Raw stream: event: poke / id: <version> / data: {"canvas","version"}.
      const poke = await waitFor('a poke on the raw SSE stream', () => sse.pokes().at(-1), {
        describe: () => ({events: sse.events, comments: sse.comments}),
      });
      const data = JSON.parse(poke.data);
      assert.deepEqual(Object.keys(data).sort(), ['canvas', 'version']);
      assert.equal(data.canvas, cv.id);
      assert.ok(Number.isSafeInteger(data.version) && data.version > 0, `version ${data.version}`);
      assert.equal(poke.id, String(data.version), 'SSE id must equal the poke version');

      // eventsource-package listener saw it too, with lastEventId.
      const bp = await waitFor('a poke at B', () => b.pokes.at(-1));
      assert.equal(bp.data.canvas, cv.id);
      assert.equal(bp.lastEventId, String(bp.data.version));

      await waitKey(b, 'node/n1', node('n1', 1, 2)); // B pulled on the poke

      // More pushes: poke versions never go backwards and match the cookie.
      for (let i = 0; i < 5; i++) await a.rep.mutate.moveNode({id: 'n1', x: i, y: i});
      await waitKey(b, 'node/n1', node('n1', 4, 4));
      const last = await waitFor('the poke of the last push', async () => {
        const pull = await rawPull(cv.id, uid('cg'), null);
        const p = sse.pokes().at(-1);
        const v = JSON.parse(p.data).version;
        return v === pull.cookie.order ? {v, pull} : false;
      }, {describe: () => sse.pokes()});
      const versions = sse.pokes().map((p) => JSON.parse(p.data).version);
      for (let i = 1; i < versions.length; i++) {
        assert.ok(versions[i] >= versions[i - 1], `poke versions went backwards: ${versions}`);
      }
      assert.equal(last.pull.cookie.canvas, cv.id);
    });
  } finally {
    await sse.close();
  }
});

test('(h2) connecting with a stale Last-Event-ID pokes at once', T, async () => {
  const cv = await createCanvas('sse last-event-id');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A', {sse: false});
    await a.rep.mutate.createNode({id: 'n1', kind: 'note', x: 1, y: 2});
    await a.rep.mutate.createNode({id: 'n2', kind: 'note', x: 1, y: 2});
    // Confirmed by a pull (A has no stream, so it pulls by hand until synced).
    await waitFor('A synced', async () => {
      await a.rep.pull();
      return (await a.rep.experimentalPendingMutations()).length === 0;
    });
  });
  const {cookie} = await rawPull(cv.id, uid('cg'), null);
  const sse = await openRawSSE(`${canvasURL(cv.id)}/events`, {'Last-Event-ID': '0'});
  try {
    assert.equal(sse.res.status, 200);
    const poke = await waitFor('an immediate poke for Last-Event-ID: 0', () => sse.pokes()[0], {
      describe: () => ({events: sse.events, comments: sse.comments}),
    });
    const data = JSON.parse(poke.data);
    assert.equal(data.canvas, cv.id);
    assert.ok(data.version >= cookie.order, `poke version ${data.version} < cookie ${cookie.order}`);
  } finally {
    await sse.close();
  }
});

test('(h3) SSE on an unknown canvas is a 404 JSON error', T, async () => {
  const res = await fetch(`${BASE}/api/canvases/${uid('nope')}/events`, {
    headers: {Accept: 'text/event-stream'},
  });
  const text = await res.text();
  assert.equal(res.status, 404, text);
  assert.equal(typeof JSON.parse(text).error, 'string');
});

test('pull envelope: cookie shape, clear on null cookie, same cookie when unchanged', T, async () => {
  const cv = await createCanvas('pull envelope');
  const cg = uid('cg');
  const first = await rawPull(cv.id, cg, null);
  assert.ok(Array.isArray(first.patch), 'patch must be an array');
  assert.deepEqual(first.patch[0], {op: 'clear'});
  assert.deepEqual(
    first.patch.find((op) => op.key === 'canvas'),
    {op: 'put', key: 'canvas', value: {id: cv.id, title: 'pull envelope'}},
  );
  assert.deepEqual(first.lastMutationIDChanges, {});
  assert.equal(typeof first.cookie, 'object');
  assert.ok(Number.isSafeInteger(first.cookie.order), `order ${first.cookie.order}`);
  assert.equal(first.cookie.canvas, cv.id);
  assert.equal(typeof first.cookie.epoch, 'string');

  const again = await rawPull(cv.id, cg, first.cookie);
  assert.deepEqual(again, {cookie: first.cookie, lastMutationIDChanges: {}, patch: []});

  const ahead = await rawPull(cv.id, cg, {...first.cookie, order: first.cookie.order + 1000});
  assert.deepEqual(ahead, {error: 'ClientStateNotFound'});
  const otherEpoch = await rawPull(cv.id, cg, {...first.cookie, epoch: `${first.cookie.epoch}x`});
  assert.deepEqual(otherEpoch, {error: 'ClientStateNotFound'});
});

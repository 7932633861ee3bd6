// Two (or more) real Replicache clients syncing through canvasd, pulled only
// when an SSE poke arrives (plus one catch-up pull when the stream opens).
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  BASE,
  needsServer,
  createCanvas,
  withClients,
  waitConverged,
  waitKey,
  snapshot,
  node,
} from './helpers.js';
import {invariantViolations} from './mutators.js';

const T = {...needsServer, timeout: 60_000};

test('(a) two clients converge through pokes alone, both directions', T, async () => {
  const cv = await createCanvas('converge');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A');
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    // Both start from the server's state of the fresh canvas.
    await waitConverged([a, b], undefined, 'initial state');

    // A -> B
    await a.rep.mutate.createNode({id: 'n1', kind: 'note', x: 10.25, y: -20.5});
    await a.rep.mutate.createNode({
      id: 'n2',
      kind: 'task',
      x: 1,
      y: 2,
      w: 321.5,
      h: 77,
      title: 'Ünïcødé ✓ title',
      body: 'line 1\nline 2 "quoted" \\ backslash',
    });
    await a.rep.mutate.moveNode({id: 'n1', x: 111.125, y: 222.75});
    const n1 = node('n1', 111.125, 222.75);
    const n2 = node('n2', 1, 2, {
      kind: 'task',
      w: 321.5,
      h: 77,
      title: 'Ünïcødé ✓ title',
      body: 'line 1\nline 2 "quoted" \\ backslash',
    });
    await waitKey(b, 'node/n1', n1);
    await waitKey(b, 'node/n2', n2);
    const s1 = await waitConverged([a, b], undefined, 'A->B');
    assert.deepEqual(s1['node/n1'], n1);
    assert.deepEqual(s1['node/n2'], n2);

    // B -> A
    await b.rep.mutate.createNode({id: 'n3', kind: 'note', x: -5, y: 5, title: 'from B'});
    await b.rep.mutate.updateNode({id: 'n2', title: 'renamed by B', h: 90});
    await b.rep.mutate.createEdge({id: 'e1', from: 'n1', to: 'n3'});
    await b.rep.mutate.moveNode({id: 'n1', x: 0, y: 0});
    const want = {
      ...s1,
      'node/n1': node('n1', 0, 0),
      'node/n2': {...n2, title: 'renamed by B', h: 90},
      'node/n3': node('n3', -5, 5, {title: 'from B'}),
      'edge/e1': {id: 'e1', from: 'n1', to: 'n3'},
    };
    const s2 = await waitConverged([a, b], want, 'B->A');
    assert.deepEqual(invariantViolations(s2), []);

    // A and B pulled only on pokes: each must have received some.
    assert.ok(a.pokes.length > 0, 'A received no poke');
    assert.ok(b.pokes.length > 0, 'B received no poke');
    assert.equal(a.clientStateNotFound + b.clientStateNotFound, 0, 'ClientStateNotFound');
  });
});

test('(b) concurrent moves of one node converge to the same value', T, async () => {
  const cv = await createCanvas('concurrent moves');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A');
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    await a.rep.mutate.createNode({id: 'hot', kind: 'note', x: 0, y: 0, title: 'hot'});
    await waitConverged([a, b], (s) => s['node/hot'] !== undefined, 'node created');

    const moves = [];
    const candidates = new Set();
    for (let i = 1; i <= 25; i++) {
      candidates.add(`${i},${i + 0.5}`);
      candidates.add(`${-i},${-i - 0.5}`);
      moves.push(a.rep.mutate.moveNode({id: 'hot', x: i, y: i + 0.5}));
      moves.push(b.rep.mutate.moveNode({id: 'hot', x: -i, y: -i - 0.5}));
    }
    await Promise.all(moves);
    const s = await waitConverged([a, b], undefined, 'after concurrent moves');
    const hot = s['node/hot'];
    assert.ok(candidates.has(`${hot.x},${hot.y}`), `final position ${hot.x},${hot.y} was never sent`);
    // The last move of each client wins over its own earlier ones; the final
    // value is one of the two clients' last moves.
    assert.ok(
      (hot.x === 25 && hot.y === 25.5) || (hot.x === -25 && hot.y === -25.5),
      `final position ${hot.x},${hot.y} is not a last move`,
    );
    assert.deepEqual(hot, node('hot', hot.x, hot.y, {title: 'hot'}));

    // One more round, interleaved: still converges, now to B's value as B is
    // the only writer after A's confirmed move.
    await a.rep.mutate.moveNode({id: 'hot', x: 7, y: 7});
    await waitConverged([a, b], (st) => st['node/hot'].x === 7, 'A move');
    await b.rep.mutate.moveNode({id: 'hot', x: 8, y: 8});
    const s2 = await waitConverged([a, b], (st) => st['node/hot'].x === 8, 'B move');
    assert.deepEqual(s2['node/hot'], node('hot', 8, 8, {title: 'hot'}));
  });
});

test('(d) a late joiner gets the same state', T, async () => {
  const cv = await createCanvas('late joiner');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A');
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    const m = a.rep.mutate;
    for (let i = 0; i < 12; i++) {
      await m.createNode({id: `n${i}`, kind: 'note', x: i * 10, y: i * -3.5, title: `node ${i}`});
    }
    for (let i = 0; i < 11; i++) await m.createEdge({id: `e${i}`, from: `n${i}`, to: `n${i + 1}`});
    // B edits A's graph only once it has it (else B's deletes may reach the
    // server first and rightly be no-ops).
    await waitConverged([a, b], (st) => st['edge/e10'] !== undefined, "A's graph");
    await b.rep.mutate.deleteNode({id: 'n5'}); // cascades e4, e5
    await b.rep.mutate.deleteEdge({id: 'e9'});
    await b.rep.mutate.moveNode({id: 'n0', x: 999, y: -999});
    await b.rep.mutate.updateNode({id: 'n1', body: 'body of n1'});
    await a.rep.mutate.updateCanvas({title: 'late joiner canvas'});
    const s = await waitConverged(
      [a, b],
      (st) =>
        st['node/n11'] !== undefined &&
        st['node/n5'] === undefined &&
        st['node/n0'].x === 999 &&
        st['canvas']?.title === 'late joiner canvas',
      'edits',
    );
    assert.equal(s['edge/e4'], undefined);
    assert.equal(s['edge/e5'], undefined);
    assert.equal(s['edge/e9'], undefined);
    assert.deepEqual(invariantViolations(s), []);

    // A brand new client, with and without an SSE stream.
    const c = open(cv.id, 'C');
    const d = open(cv.id, 'D', {sse: false});
    await waitConverged([a, b, c, d], s, 'late joiners');
    assert.deepEqual(await snapshot(c.rep), s);
    assert.deepEqual(await snapshot(d.rep), s);
  });
});

test('(g) updateCanvas title reaches the other client', T, async () => {
  const cv = await createCanvas('before');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A');
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    // The fresh canvas's meta is part of the first pull.
    await waitKey(b, 'canvas', {id: cv.id, title: 'before'});
    await a.rep.mutate.updateCanvas({title: 'after ✓'});
    await waitKey(b, 'canvas', {id: cv.id, title: 'after ✓'});
    await b.rep.mutate.updateCanvas({title: 'and back'});
    const s = await waitConverged([a, b], (st) => st.canvas?.title === 'and back', 'titles');
    assert.deepEqual(s.canvas, {id: cv.id, title: 'and back'});

    // GET /api/canvases/{id} reflects the title too.
    const res = await fetch(`${BASE}/api/canvases/${cv.id}`);
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.id, cv.id);
    assert.equal(body.title, 'and back');
  });
});

// Mutations the server rejects (permanent errors) are skipped: the client's
// lastMutationID still advances, its optimistic write disappears, other
// clients never see it, and the client keeps working.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {
  needsServer,
  createCanvas,
  withClients,
  waitConverged,
  waitSynced,
  waitKey,
  snapshot,
  node,
} from './helpers.js';
import {makeMutators, invariantViolations} from './mutators.js';

const T = {...needsServer, timeout: 60_000};

test('(c) a rejected createEdge does not wedge its client', T, async () => {
  const cv = await createCanvas('rejected edge');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A-unchecked', {
      mutators: makeMutators(cv.id, {uncheckedCreateEdge: true}),
    });
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);

    await a.rep.mutate.createNode({id: 'n1', kind: 'note', x: 1, y: 1});
    // Edge to a node that exists nowhere: the unchecked client writes it
    // optimistically, the server must skip it.
    await a.rep.mutate.createEdge({id: 'bad', from: 'n1', to: 'ghost'});
    assert.deepEqual((await snapshot(a.rep))['edge/bad'], {id: 'bad', from: 'n1', to: 'ghost'});

    // A keeps working after the rejected mutation.
    await a.rep.mutate.createNode({id: 'n2', kind: 'note', x: 2, y: 2});
    await a.rep.mutate.moveNode({id: 'n1', x: 50, y: 60});
    await a.rep.mutate.createEdge({id: 'good', from: 'n1', to: 'n2'}); // valid edge

    await waitSynced(a, 'A pending mutations to drain after a rejected createEdge');
    const want = {
      canvas: {id: cv.id, title: 'rejected edge'},
      'node/n1': node('n1', 50, 60),
      'node/n2': node('n2', 2, 2),
      'edge/good': {id: 'good', from: 'n1', to: 'n2'},
    };
    const s = await waitConverged([a, b], want, 'after rejected edge');
    assert.equal(s['edge/bad'], undefined);

    // And later still.
    await a.rep.mutate.updateNode({id: 'n2', title: 'still alive'});
    await waitKey(b, 'node/n2', node('n2', 2, 2, {title: 'still alive'}));
    await waitSynced(a);
    assert.equal(a.clientStateNotFound, 0);
  });
});

test('(c2) an unknown mutator name is skipped and does not wedge its client', T, async () => {
  const cv = await createCanvas('unknown mutator');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A-extra', {
      mutators: {
        ...makeMutators(cv.id),
        // Exists only on this client; the server does not know the name.
        async bogusMutator(tx, args) {
          await tx.set(`node/${args.id}`, {
            id: args.id, kind: 'note', x: 0, y: 0, w: 200, h: 120, title: 'bogus', body: '',
          });
        },
      },
    });
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    await a.rep.mutate.bogusMutator({id: 'ghost'});
    await a.rep.mutate.createNode({id: 'real', kind: 'note', x: 3, y: 4});
    await waitSynced(a, 'A pending mutations to drain after an unknown mutator');
    const s = await waitConverged([a, b], (st) => st['node/real'] !== undefined, 'unknown mutator');
    assert.equal(s['node/ghost'], undefined);
    assert.deepEqual(s['node/real'], node('real', 3, 4));
  });
});

test('(c3) mutations with bad args are skipped', T, async () => {
  const cv = await createCanvas('bad args');
  await withClients(async ({open}) => {
    // Raw mutators that write whatever they are given.
    const raw = {
      ...makeMutators(cv.id),
      async createNode(tx, args) {
        await tx.set(`node/${args.id}`, args);
      },
    };
    const a = open(cv.id, 'A-raw', {mutators: raw});
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    await a.rep.mutate.createNode({id: 'far', kind: 'note', x: 1e8, y: 0, w: 1, h: 1, title: '', body: ''});
    await a.rep.mutate.createNode({id: 'kind', kind: 'NOT OK', x: 0, y: 0, w: 1, h: 1, title: '', body: ''});
    await a.rep.mutate.createNode({id: 'w0', kind: 'note', x: 0, y: 0, w: 0, h: 1, title: '', body: ''});
    await a.rep.mutate.createNode({
      id: 'longtitle', kind: 'note', x: 0, y: 0, w: 1, h: 1, title: 't'.repeat(201), body: '',
    });
    await a.rep.mutate.createNode({id: 'ok', kind: 'note', x: 0, y: 0, w: 1, h: 1, title: '', body: ''});
    await waitSynced(a, 'A pending mutations to drain after bad args');
    const s = await waitConverged([a, b], (st) => st['node/ok'] !== undefined, 'bad args');
    for (const id of ['far', 'kind', 'w0', 'longtitle']) {
      assert.equal(s[`node/${id}`], undefined, `node ${id} with bad args was accepted`);
    }
  });
});

test('(f) the server rejects a cycle-closing edge the client let through', T, async () => {
  const cv = await createCanvas('cycle');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A-unchecked', {
      mutators: makeMutators(cv.id, {uncheckedCreateEdge: true}),
    });
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);

    // B watches for the bad edge during the whole test.
    let bSawCycle = false;
    const unsubscribe = b.rep.subscribe((tx) => tx.has('edge/ca'), {
      onData: (has) => {
        if (has) bSawCycle = true;
      },
    });
    try {
      for (const id of ['a', 'b', 'c']) {
        await b.rep.mutate.createNode({id, kind: 'note', x: 0, y: 0});
      }
      await b.rep.mutate.createEdge({id: 'ab', from: 'a', to: 'b'});
      await b.rep.mutate.createEdge({id: 'bc', from: 'b', to: 'c'});
      await waitConverged([a, b], (st) => st['edge/bc'] !== undefined, 'chain a->b->c');

      // c -> a closes a cycle; A's createEdge does not check it.
      await a.rep.mutate.createEdge({id: 'ca', from: 'c', to: 'a'});
      assert.deepEqual((await snapshot(a.rep))['edge/ca'], {id: 'ca', from: 'c', to: 'a'});
      // Self loop and duplicate are rejected by the server too.
      await a.rep.mutate.createEdge({id: 'aa', from: 'a', to: 'a'});
      await a.rep.mutate.createEdge({id: 'ab2', from: 'a', to: 'b'});
      // A marker after the bad edges: once B sees it, B has pulled past them.
      await a.rep.mutate.createNode({id: 'marker', kind: 'note', x: 9, y: 9});

      await waitSynced(a, 'A pending mutations to drain after a cycle-closing edge');
      const s = await waitConverged([a, b], (st) => st['node/marker'] !== undefined, 'after cycle');
      assert.equal(s['edge/ca'], undefined, 'cycle-closing edge survived on A');
      assert.equal(s['edge/aa'], undefined, 'self loop survived');
      assert.equal(s['edge/ab2'], undefined, 'duplicate edge survived');
      assert.deepEqual(invariantViolations(s), []);
      assert.equal(bSawCycle, false, 'B saw the cycle-closing edge');

      // Server-side the cycle check also holds when both edges race from
      // two checked clients: x->y on A and y->x on B at the same time.
      await a.rep.mutate.createNode({id: 'x', kind: 'note', x: 0, y: 0});
      await a.rep.mutate.createNode({id: 'y', kind: 'note', x: 0, y: 0});
      await waitConverged([a, b], (st) => st['node/y'] !== undefined, 'x and y');
      await Promise.all([
        a.rep.mutate.createEdge({id: 'xy', from: 'x', to: 'y'}),
        b.rep.mutate.createEdge({id: 'yx', from: 'y', to: 'x'}),
      ]);
      const s2 = await waitConverged([a, b], undefined, 'racing edges');
      const kept = ['edge/xy', 'edge/yx'].filter((k) => s2[k] !== undefined);
      assert.equal(kept.length, 1, `expected exactly one of xy/yx to survive, got ${kept}`);
      assert.deepEqual(invariantViolations(s2), []);
    } finally {
      unsubscribe();
    }
  });
});

// Local checks of the client-side mutators (no server): a Replicache with no
// push/pull URLs runs the mutators optimistically only.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {Replicache} from 'replicache';
import {makeMutators, invariantViolations} from './mutators.js';
import {snapshot, node} from './helpers.js';

async function withLocal(fn, opts) {
  const rep = new Replicache({
    name: `local-${Math.random().toString(36).slice(2)}`,
    kvStore: 'mem',
    pullInterval: null,
    logLevel: 'error',
    mutators: makeMutators('cv1', opts),
  });
  try {
    await fn(rep);
  } finally {
    await rep.close();
  }
}

test('mutators: createNode defaults, duplicate id, bad args', async () => {
  await withLocal(async (rep) => {
    await rep.mutate.createNode({id: 'a', kind: 'note', x: 1.5, y: -2});
    await rep.mutate.createNode({id: 'a', kind: 'other', x: 9, y: 9}); // id used: no write
    await rep.mutate.createNode({id: 'bad id', kind: 'note', x: 0, y: 0});
    await rep.mutate.createNode({id: 'b', kind: 'Bad', x: 0, y: 0});
    await rep.mutate.createNode({id: 'c', kind: 'note', x: 2e7, y: 0});
    await rep.mutate.createNode({id: 'd', kind: 'note', x: 0, y: 0, w: 0});
    await rep.mutate.createNode({id: 'e', kind: 'note', x: 0, y: 0, title: 'x'.repeat(201)});
    await rep.mutate.createNode({id: 'f', kind: 'note', x: 0, y: 0, body: 'x'.repeat(65537)});
    assert.deepEqual(await snapshot(rep), {'node/a': node('a', 1.5, -2)});
  });
});

test('mutators: updateNode merges, moveNode, deleteNode cascades', async () => {
  await withLocal(async (rep) => {
    const m = rep.mutate;
    for (const id of ['a', 'b', 'c']) await m.createNode({id, kind: 'note', x: 0, y: 0});
    await m.updateNode({id: 'a', title: 'T', w: 50});
    await m.updateNode({id: 'a', h: -1}); // bad field: nothing written
    await m.updateNode({id: 'zz', title: 'nope'});
    await m.moveNode({id: 'b', x: 3, y: 4});
    await m.moveNode({id: 'zz', x: 3, y: 4});
    await m.createEdge({id: 'ab', from: 'a', to: 'b'});
    await m.createEdge({id: 'bc', from: 'b', to: 'c'});
    await m.createEdge({id: 'ac', from: 'a', to: 'c'});
    await m.deleteNode({id: 'b'});
    assert.deepEqual(await snapshot(rep), {
      'edge/ac': {id: 'ac', from: 'a', to: 'c'},
      'node/a': node('a', 0, 0, {title: 'T', w: 50}),
      'node/c': node('c', 0, 0),
    });
  });
});

test('mutators: createEdge rules (live nodes, self, duplicate, acyclic)', async () => {
  await withLocal(async (rep) => {
    const m = rep.mutate;
    for (const id of ['a', 'b', 'c']) await m.createNode({id, kind: 'note', x: 0, y: 0});
    await m.createEdge({id: 'ab', from: 'a', to: 'b'});
    await m.createEdge({id: 'bc', from: 'b', to: 'c'});
    await m.createEdge({id: 'ab2', from: 'a', to: 'b'}); // duplicate from->to
    await m.createEdge({id: 'aa', from: 'a', to: 'a'}); // self loop
    await m.createEdge({id: 'ax', from: 'a', to: 'x'}); // missing node
    await m.createEdge({id: 'ca', from: 'c', to: 'a'}); // closes a cycle
    await m.createEdge({id: 'ab', from: 'b', to: 'a'}); // id used (and a cycle)
    await m.deleteEdge({id: 'nope'});
    await m.updateCanvas({title: 'Hello'});
    const snap = await snapshot(rep);
    assert.deepEqual(snap, {
      canvas: {id: 'cv1', title: 'Hello'},
      'edge/ab': {id: 'ab', from: 'a', to: 'b'},
      'edge/bc': {id: 'bc', from: 'b', to: 'c'},
      'node/a': node('a', 0, 0),
      'node/b': node('b', 0, 0),
      'node/c': node('c', 0, 0),
    });
    assert.deepEqual(invariantViolations(snap), []);
    await m.deleteEdge({id: 'bc'});
    await m.createEdge({id: 'ca', from: 'c', to: 'a'}); // no cycle any more
    assert.deepEqual((await snapshot(rep))['edge/ca'], {id: 'ca', from: 'c', to: 'a'});
  });
});

test('mutators: uncheckedCreateEdge writes what the server must reject', async () => {
  await withLocal(
    async (rep) => {
      await rep.mutate.createNode({id: 'a', kind: 'note', x: 0, y: 0});
      await rep.mutate.createEdge({id: 'ax', from: 'a', to: 'ghost'});
      const snap = await snapshot(rep);
      assert.deepEqual(snap['edge/ax'], {id: 'ax', from: 'a', to: 'ghost'});
      assert.notDeepEqual(invariantViolations(snap), []);
    },
    {uncheckedCreateEdge: true},
  );
});

// deleteNode deletes every edge touching the node, on every client.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {needsServer, createCanvas, withClients, waitConverged, node} from './helpers.js';
import {invariantViolations} from './mutators.js';

const T = {...needsServer, timeout: 60_000};

test('(e) deleteNode cascades its edges on every client', T, async () => {
  const cv = await createCanvas('cascade');
  await withClients(async ({open}) => {
    const a = open(cv.id, 'A');
    const b = open(cv.id, 'B');
    await Promise.all([a.opened, b.opened]);
    const m = a.rep.mutate;
    for (const id of ['a', 'b', 'c', 'd']) await m.createNode({id, kind: 'note', x: 0, y: 0});
    await m.createEdge({id: 'ab', from: 'a', to: 'b'});
    await m.createEdge({id: 'bc', from: 'b', to: 'c'});
    await m.createEdge({id: 'db', from: 'd', to: 'b'});
    await m.createEdge({id: 'ac', from: 'a', to: 'c'});
    // c->d would close c->d->b->c: rejected locally (and would be on the server).
    await m.createEdge({id: 'cd', from: 'c', to: 'd'});
    const s0 = await waitConverged([a, b], (st) => st['edge/ac'] !== undefined, 'graph');
    assert.equal(s0['edge/cd'], undefined);
    assert.deepEqual(
      Object.keys(s0).filter((k) => k.startsWith('edge/')).sort(),
      ['edge/ab', 'edge/ac', 'edge/bc', 'edge/db'],
    );

    // B deletes b: ab, bc, db go with it on both clients; ac stays.
    await b.rep.mutate.deleteNode({id: 'b'});
    const s1 = await waitConverged([a, b], (st) => st['node/b'] === undefined, 'after delete');
    assert.deepEqual(s1, {
      canvas: {id: cv.id, title: 'cascade'},
      'node/a': node('a', 0, 0),
      'node/c': node('c', 0, 0),
      'node/d': node('d', 0, 0),
      'edge/ac': {id: 'ac', from: 'a', to: 'c'},
    });

    // Race: A deletes c while B adds edges to and from c. Whatever order the
    // server picks, no edge may point at a deleted node, on either client.
    await Promise.all([
      a.rep.mutate.deleteNode({id: 'c'}),
      b.rep.mutate.createEdge({id: 'dc', from: 'd', to: 'c'}),
      b.rep.mutate.createEdge({id: 'ca', from: 'c', to: 'a'}),
      b.rep.mutate.createEdge({id: 'da', from: 'd', to: 'a'}),
    ]);
    const s2 = await waitConverged([a, b], (st) => st['node/c'] === undefined, 'race');
    assert.equal(s2['edge/dc'], undefined);
    assert.equal(s2['edge/ca'], undefined);
    assert.equal(s2['edge/ac'], undefined);
    assert.deepEqual(s2['edge/da'], {id: 'da', from: 'd', to: 'a'});
    assert.deepEqual(invariantViolations(s2), []);
  });
});

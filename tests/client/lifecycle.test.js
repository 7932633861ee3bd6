// Data lifecycle with the real client: a client group the server deleted
// for idleness is told ClientStateNotFound on pull and on push, and the
// client resets cleanly (a new client group of the same Replicache name
// syncs the canvas and writes again).
//
// Needs a server whose collector runs fast (tests/realclient_test.go starts
// one with --client-group-ttl=2s --gc-interval=200ms and sets CANVASD_GC=1);
// skipped otherwise.
import {test} from 'node:test';
import assert from 'node:assert/strict';
import {randomBytes} from 'node:crypto';
import {Replicache} from 'replicache';
import {BASE, canvasURL, createCanvas, node, snapshot, waitFor} from './helpers.js';
import {makeMutators} from './mutators.js';

const opts =
  process.env.CANVASD_GC === '1' && BASE
    ? {timeout: 60_000}
    : {skip: 'needs a server with short lifecycle TTLs (CANVASD_GC=1)'};

/** A Replicache without pokes: the test pulls when it wants. */
function open(canvasID, name) {
  const base = canvasURL(canvasID);
  const rep = new Replicache({
    name,
    kvStore: 'mem', // shared by name, like the tabs of one browser
    pushURL: `${base}/replicache/push`,
    pullURL: `${base}/replicache/pull`,
    pullInterval: null,
    pushDelay: 0,
    logLevel: process.env.CANVASD_RC_LOG ?? 'error',
    mutators: makeMutators(canvasID),
  });
  const c = {rep, clientStateNotFound: 0};
  rep.onClientStateNotFound = () => {
    c.clientStateNotFound++;
  };
  return c;
}

/** Pulls until c has nothing pending (the server acknowledged it all). */
async function synced(c, what) {
  await waitFor(what, async () => {
    await c.rep.pull({now: true}).catch(() => {});
    return (await c.rep.experimentalPendingMutations()).length === 0;
  });
}

async function metric(name) {
  const text = await (await fetch(`${BASE}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : 0;
}

test('a returning client of a deleted client group gets ClientStateNotFound and resets', opts, async () => {
  const {id} = await createCanvas('lifecycle');
  const writerName = `${id}-writer-${randomBytes(4).toString('hex')}`;
  const writer = open(id, writerName);
  const reader = open(id, `${id}-reader-${randomBytes(4).toString('hex')}`);
  const opened = [writer, reader];
  try {
    const deletedBefore = await metric('canvasd_client_groups_deleted_total');
    await writer.rep.mutate.createNode(node('n1', 1, 1));
    await reader.rep.mutate.createNode(node('r1', 2, 2));
    await synced(writer, 'writer synced');
    await synced(reader, 'reader synced');
    const oldGroup = await writer.rep.clientGroupID;

    // Both go quiet; the collector deletes their groups.
    await waitFor(
      'the idle client groups deleted',
      async () => (await metric('canvasd_client_groups_deleted_total')) >= deletedBefore + 2,
      {timeout: 20_000},
    );

    // Pull: the server no longer knows the reader's group.
    await reader.rep.pull({now: true}).catch(() => {});
    await waitFor('ClientStateNotFound on pull', () => reader.clientStateNotFound > 0);

    // Push: the writer's next mutation is refused the same way.
    writer.rep.mutate.createNode(node('lost', 3, 3)).catch(() => {});
    await waitFor('ClientStateNotFound on push', () => writer.clientStateNotFound > 0);

    // The reset: what a browser does on ClientStateNotFound (reload) is a
    // new Replicache of the same name. It starts a new client group and
    // gets the whole canvas.
    await writer.rep.close();
    const again = open(id, writerName);
    opened.push(again);
    assert.notEqual(await again.rep.clientGroupID, oldGroup, 'a new client group');
    await waitFor('the reset client sees the canvas', async () => {
      await again.rep.pull({now: true}).catch(() => {});
      const s = await snapshot(again.rep);
      return s['node/n1'] && s['node/r1'] && s.canvas;
    }, {describe: async () => ({group: await again.rep.clientGroupID, snapshot: await snapshot(again.rep)})});
    await again.rep.mutate.createNode(node('n2', 4, 4));
    await synced(again, 'the reset client writes again');
    assert.equal(again.clientStateNotFound, 0);

    // Another client sees the reset client's write.
    const other = open(id, `${id}-other-${randomBytes(4).toString('hex')}`);
    opened.push(other);
    await waitFor('a new client sees every write', async () => {
      await other.rep.pull({now: true}).catch(() => {});
      const s = await snapshot(other.rep);
      return s['node/n1'] && s['node/r1'] && s['node/n2'];
    });
  } finally {
    await Promise.allSettled(opened.map((c) => (c.rep.closed ? undefined : c.rep.close())));
  }
});

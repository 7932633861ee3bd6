// Shared helpers for the canvasd real-client suite: canvases, Replicache
// clients driven by SSE pokes, snapshots and polling waits.
import {isDeepStrictEqual, inspect} from 'node:util';
import {randomBytes} from 'node:crypto';
import {Replicache} from 'replicache';
import {EventSource} from 'eventsource';
import {makeMutators} from './mutators.js';

/** Base URL of the server under test, e.g. http://127.0.0.1:8080 (no trailing slash). */
export const BASE = (process.env.CANVASD_URL ?? '').replace(/\/+$/, '');

/** node:test option: skip server tests when CANVASD_URL is not set. */
export const needsServer = BASE ? {} : {skip: 'CANVASD_URL not set'};

export const WAIT_MS = Number(process.env.CANVASD_WAIT_MS ?? 10_000);

/** A fresh id matching ^[A-Za-z0-9_-]{1,64}$. */
export function uid(prefix = 'rc') {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(6).toString('hex')}`;
}

export function canvasURL(canvasID) {
  return `${BASE}/api/canvases/${canvasID}`;
}

/** POST /api/canvases; returns {id, status, body}. */
export async function createCanvas(title = 'real-client test') {
  const id = uid('cv');
  const res = await fetch(`${BASE}/api/canvases`, {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({id, title}),
  });
  const text = await res.text();
  if (res.status !== 201) {
    throw new Error(`POST /api/canvases ${id}: status ${res.status}, body ${text}`);
  }
  return {id, title, status: res.status, body: JSON.parse(text)};
}

/**
 * Waits until `probe()` returns a truthy value (which is returned), polling
 * every 20 ms; fails after `timeout` ms with `what` and the last probe value
 * (or the last error thrown by `probe`).
 */
export async function waitFor(what, probe, {timeout = WAIT_MS, describe} = {}) {
  const deadline = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await probe();
      lastErr = undefined;
      if (last) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const detail = lastErr
        ? `last error: ${lastErr?.stack ?? lastErr}`
        : `last value: ${inspect(describe ? await describe() : last, {depth: 6})}`;
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; ${detail}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Every key/value of a Replicache, as a plain object with sorted keys. */
export async function snapshot(rep) {
  const entries = await rep.query((tx) => tx.scan().entries().toArray());
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Object.fromEntries(entries.map(([k, v]) => [k, structuredClone(v)]));
}

export async function pendingCount(rep) {
  return (await rep.experimentalPendingMutations()).length;
}

/**
 * One Replicache client of a canvas, pulled on every SSE `poke` (and once
 * when the stream opens, to catch up on pokes sent before it connected).
 *
 * @param {string} canvasID
 * @param {string} who  client label; the Replicache name is `${canvasID}-${who}-<random>`
 * @param {{mutators?: object, sse?: boolean}} [opts]
 */
export function openClient(canvasID, who, opts = {}) {
  const {mutators = makeMutators(canvasID), sse = true} = opts;
  const base = canvasURL(canvasID);
  const rep = new Replicache({
    name: `${canvasID}-${who}-${randomBytes(4).toString('hex')}`,
    kvStore: 'mem',
    pushURL: `${base}/replicache/push`,
    pullURL: `${base}/replicache/pull`,
    pullInterval: null,
    pushDelay: 0,
    logLevel: process.env.CANVASD_RC_LOG ?? 'error',
    mutators,
  });
  const client = {
    who,
    rep,
    es: null,
    pokes: [], // {version, lastEventId, data} of every poke received
    opened: null, // promise: SSE stream open
    clientStateNotFound: 0,
    async close() {
      if (client.es) client.es.close();
      if (!rep.closed) await rep.close();
    },
  };
  rep.onClientStateNotFound = () => {
    client.clientStateNotFound++;
  };
  const pull = () => {
    if (!rep.closed) rep.pull().catch(() => {});
  };
  if (sse) {
    const es = new EventSource(`${base}/events`);
    client.es = es;
    client.opened = new Promise((resolve) => {
      es.addEventListener('open', () => {
        pull();
        resolve();
      });
    });
    es.addEventListener('poke', (ev) => {
      let data;
      try {
        data = JSON.parse(ev.data);
      } catch {
        data = ev.data;
      }
      client.pokes.push({lastEventId: ev.lastEventId, data});
      pull();
    });
  } else {
    client.opened = Promise.resolve();
    pull();
  }
  return client;
}

/**
 * Runs `fn(clientsRegistry)` and closes every client opened through the
 * registry afterwards (also on failure), so the process can exit.
 */
export async function withClients(fn) {
  const opened = [];
  const reg = {
    open(canvasID, who, opts) {
      const c = openClient(canvasID, who, opts);
      opened.push(c);
      return c;
    },
  };
  try {
    return await fn(reg);
  } finally {
    await Promise.allSettled(opened.map((c) => c.close()));
  }
}

/** Waits until a client has no pending (unconfirmed) mutations. */
export async function waitSynced(client, what = `${client.who} has no pending mutations`) {
  await waitFor(what, async () => (await pendingCount(client.rep)) === 0, {
    describe: async () => ({
      pending: await client.rep.experimentalPendingMutations(),
      pokes: client.pokes.length,
    }),
  });
}

/**
 * Waits until every client has no pending mutations and all hold the same
 * snapshot; if `expected` is given, until that snapshot also equals it (or
 * `expected(snapshot)` is true when it is a function). Returns the snapshot.
 */
export async function waitConverged(clients, expected, what = 'convergence') {
  const state = async () =>
    Promise.all(
      clients.map(async (c) => ({
        who: c.who,
        pending: await pendingCount(c.rep),
        snap: await snapshot(c.rep),
      })),
    );
  let result;
  await waitFor(
    `${what} of ${clients.map((c) => c.who).join(', ')}`,
    async () => {
      const s = await state();
      if (s.some((x) => x.pending !== 0)) return false;
      const first = s[0].snap;
      if (!s.every((x) => isDeepStrictEqual(x.snap, first))) return false;
      if (typeof expected === 'function' && !expected(first)) return false;
      if (expected && typeof expected !== 'function' && !isDeepStrictEqual(first, expected)) {
        return false;
      }
      result = first;
      return true;
    },
    {describe: async () => ({expected, clients: await state()})},
  );
  return result;
}

/** Waits until `client` has key with exactly `value` (undefined: key absent). */
export async function waitKey(client, key, value) {
  await waitFor(
    `${client.who} to see ${key} = ${JSON.stringify(value)}`,
    async () => {
      const v = await client.rep.query((tx) => tx.get(key));
      return isDeepStrictEqual(v === undefined ? undefined : structuredClone(v), value);
    },
    {describe: async () => client.rep.query((tx) => tx.get(key))},
  );
}

/** A node value with every field filled in. */
export function node(id, x, y, extra = {}) {
  return {id, kind: 'note', x, y, w: 200, h: 120, title: '', body: '', ...extra};
}

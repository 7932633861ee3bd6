// Driver of real Replicache clients for the Go fault suite (tests/fault).
// It reads one JSON command per line on stdin and answers one JSON line per
// command on stdout: {"re": <seq>, ...}. Clients pull only when their event
// stream opens or pokes them, as the README wires them.
//
//   {"seq":1,"op":"open","name":"r0","canvas":"c1","base":"http://127.0.0.1:1234","idx":50}
//   {"seq":2,"op":"start","seed":42,"intervalMs":120,"max":200}
//   {"seq":3,"op":"stop"}
//   {"seq":4,"op":"flush","timeoutMs":20000}   push until nothing is pending
//   {"seq":5,"op":"state"}                     snapshots, acknowledgements, errors
//   {"seq":6,"op":"close"}
import readline from 'node:readline';
import {Replicache} from 'replicache';
import {EventSource} from 'eventsource';
import {makeMutators} from './mutators.js';

const clients = new Map(); // name -> client

// Errors per client, attributed by the ?who= query parameter every URL of a
// client carries (the server ignores it).
const realFetch = globalThis.fetch;
globalThis.fetch = async (input, init) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  let who = null;
  let kind = 'pull';
  try {
    const u = new URL(url);
    who = u.searchParams.get('who');
    kind = u.pathname.endsWith('/push') ? 'push' : u.pathname.endsWith('/events') ? 'stream' : 'pull';
  } catch {}
  const count = () => {
    const c = who && clients.get(who);
    if (c) c.errors[kind]++;
  };
  try {
    const res = await realFetch(input, init);
    if (!res.ok) count();
    else if (kind === 'pull' && who && clients.get(who)) {
      // The pull is applied after this returns; note when the pending
      // list changes.
      const c = clients.get(who);
      setTimeout(() => notePending(c), 0);
      setTimeout(() => notePending(c), 20);
      setTimeout(() => notePending(c), 100);
    }
    return res;
  } catch (err) {
    count();
    throw err;
  }
};

// mulberry32: a small seeded generator, so a seed replays the same choices.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function notePending(c) {
  if (c.rep.closed) return;
  try {
    const n = (await c.rep.experimentalPendingMutations()).length;
    if (n !== c.lastPending) {
      c.lastPending = n;
      c.pendingAt = Date.now();
    }
  } catch {}
}

function open({name, canvas, base, idx}) {
  const url = (p) => `${base}/api/canvases/${canvas}${p}?who=${name}`;
  const rep = new Replicache({
    name: `${canvas}-${name}-${Date.now()}`,
    kvStore: 'mem',
    pushURL: url('/replicache/push'),
    pullURL: url('/replicache/pull'),
    pullInterval: null,
    pushDelay: 5,
    requestOptions: {minDelayMs: 30, maxDelayMs: 1000},
    logLevel: 'error',
    mutators: makeMutators(canvas),
  });
  const c = {
    name, canvas, idx, rep, es: null, closed: false,
    issued: 0, nodes: [], seq: 0, timer: null,
    errors: {push: 0, pull: 0, stream: 0, resets: 0},
    // When the data last changed (a client found equal to the database
    // got there at that moment), and when the pending list last changed.
    changedAt: Date.now(), lastPending: 0, pendingAt: Date.now(),
  };
  rep.subscribe((tx) => tx.scan().entries().toArray(), {
    onData: () => {
      c.changedAt = Date.now();
    },
  });
  rep.onClientStateNotFound = () => c.errors.resets++;
  const pull = () => {
    if (!rep.closed) rep.pull().catch(() => {});
  };
  const connect = () => {
    if (c.closed) return;
    const es = new EventSource(url('/events'));
    c.es = es;
    es.addEventListener('open', pull);
    es.addEventListener('poke', pull);
    es.addEventListener('error', () => {
      // The stream reconnects by itself after a network error; after a
      // refused status it gives up, and so would a browser: open anew.
      if (es.readyState === EventSource.CLOSED && !c.closed) {
        setTimeout(connect, 300);
      }
    });
  };
  connect();
  clients.set(name, c);
  return {};
}

async function mutate(c, r) {
  const id = c.issued + 1;
  const tag = `${c.name}.${id}`;
  const x = c.idx * 100000 + id;
  const y = Math.floor(r() * 1000);
  const m = c.rep.mutate;
  const p = r();
  if (c.nodes.length < 2 || p < 0.3) {
    const nid = `${c.name}n${++c.seq}`;
    c.nodes.push(nid);
    await m.createNode({id: nid, kind: 'note', x, y, w: 200, h: 120, title: tag, body: ''});
  } else if (p < 0.65) {
    await m.moveNode({id: c.nodes[Math.floor(r() * c.nodes.length)], x, y});
  } else if (p < 0.9) {
    await m.updateNode({id: c.nodes[Math.floor(r() * c.nodes.length)], title: tag});
  } else {
    const i = Math.floor(r() * c.nodes.length);
    const [nid] = c.nodes.splice(i, 1);
    await m.deleteNode({id: nid});
  }
  c.issued = id;
}

function start({seed, intervalMs, max}) {
  for (const c of clients.values()) {
    const r = rng(seed + c.idx);
    let n = 0;
    const tick = async () => {
      if (c.closed || c.timer === null || n >= max) return;
      n++;
      try {
        await mutate(c, r);
      } catch {}
      c.timer = setTimeout(tick, intervalMs / 2 + r() * intervalMs);
    };
    c.timer = setTimeout(tick, r() * intervalMs);
  }
  return {};
}

function stop() {
  for (const c of clients.values()) {
    clearTimeout(c.timer);
    c.timer = null;
  }
  return {};
}

async function pending(c) {
  return (await c.rep.experimentalPendingMutations()).map((m) => m.id);
}

async function flush({timeoutMs}) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let left = 0;
    for (const c of clients.values()) {
      const ids = await pending(c);
      if (ids.length > 0) {
        left += ids.length;
        c.rep.push({now: true}).catch(() => {});
      }
    }
    if (left === 0) return {ok: true};
    if (Date.now() > deadline) return {ok: false, pending: left};
    await new Promise((r) => setTimeout(r, 100));
  }
}

// push sends the pending mutations of every client now (never a pull).
async function push() {
  for (const c of clients.values()) {
    if ((await pending(c)).length > 0) c.rep.push({now: true}).catch(() => {});
  }
  return {};
}

// closedStreams names the clients whose event stream is not open.
function closedStreams() {
  const closed = [];
  for (const c of clients.values()) {
    if (c.es === null || c.es.readyState !== EventSource.OPEN) closed.push(c.name);
  }
  return {closed};
}

async function state() {
  const out = [];
  for (const c of clients.values()) {
    // A pending change not noted yet is dated now (an upper bound).
    await notePending(c);
    const entries = await c.rep.query((tx) => tx.scan().entries().toArray());
    const ids = await pending(c);
    // Mutation ids run 1..issued; everything below the oldest pending one
    // was confirmed by a pull.
    const acked = ids.length > 0 ? Math.min(...ids) - 1 : c.issued;
    out.push({
      name: c.name,
      canvas: c.canvas,
      clientID: c.rep.clientID,
      pending: ids.length,
      acked,
      snapshot: Object.fromEntries(entries),
      errors: c.errors,
      streamOpen: c.es !== null && c.es.readyState === EventSource.OPEN,
      changedAt: c.changedAt,
      pendingAt: c.pendingAt,
    });
  }
  return {clients: out};
}

async function close() {
  for (const c of clients.values()) {
    c.closed = true;
    clearTimeout(c.timer);
    if (c.es) c.es.close();
    if (!c.rep.closed) await c.rep.close();
  }
  return {};
}

const ops = {open, start, stop, flush, push, closedStreams, state, close};
const rl = readline.createInterface({input: process.stdin});
rl.on('line', async (line) => {
  let cmd;
  try {
    cmd = JSON.parse(line);
    const res = await ops[cmd.op](cmd);
    process.stdout.write(JSON.stringify({re: cmd.seq, ...res}) + '\n');
    if (cmd.op === 'close') process.exit(0);
  } catch (err) {
    process.stdout.write(JSON.stringify({re: cmd?.seq ?? 0, error: String(err?.stack ?? err)}) + '\n');
  }
});
rl.on('close', () => process.exit(0));

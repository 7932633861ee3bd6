// Client-side mutators for canvasd, mirroring the server rules of
// DESIGN.md ("Mutators" and "Limits"). The client runs them optimistically;
// the server runs the same rules authoritatively. A mutation that breaks a
// rule writes nothing here (the server skips it and still advances the
// client's lastMutationID), so optimistic state equals server state.
//
// Key space of one canvas:
//   canvas      {id, title}
//   node/<id>   {id, kind, x, y, w, h, title, body}
//   edge/<id>   {id, from, to}

export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const KIND_RE = /^[a-z0-9_-]{1,32}$/;

export const LIMITS = Object.freeze({
  maxTitle: 200, // characters (runes) in a node or canvas title
  maxBody: 64 * 1024, // bytes (UTF-8) in a node body
  maxCoord: 1e7, // |x|, |y|
  maxSize: 1e5, // 0 < w, h <= maxSize
});

export const nodeKey = (id) => `node/${id}`;
export const edgeKey = (id) => `edge/${id}`;
export const CANVAS_KEY = 'canvas';

const NODE_FIELDS = ['kind', 'x', 'y', 'w', 'h', 'title', 'body'];

const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const validID = (v) => typeof v === 'string' && ID_RE.test(v);
const validKind = (v) => typeof v === 'string' && KIND_RE.test(v);
const validCoord = (v) =>
  typeof v === 'number' && Number.isFinite(v) && Math.abs(v) <= LIMITS.maxCoord;
const validSize = (v) =>
  typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= LIMITS.maxSize;
const validTitle = (v) => typeof v === 'string' && [...v].length <= LIMITS.maxTitle;
const validBody = (v) =>
  typeof v === 'string' && new TextEncoder().encode(v).length <= LIMITS.maxBody;

const FIELD_OK = {
  kind: validKind,
  x: validCoord,
  y: validCoord,
  w: validSize,
  h: validSize,
  title: validTitle,
  body: validBody,
};

// Is there a path from `start` to `target` following edges from -> to?
function reaches(edges, start, target) {
  const out = new Map();
  for (const e of edges) {
    if (!out.has(e.from)) out.set(e.from, []);
    out.get(e.from).push(e.to);
  }
  const seen = new Set();
  const stack = [start];
  while (stack.length > 0) {
    const n = stack.pop();
    if (n === target) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    for (const m of out.get(n) ?? []) if (!seen.has(m)) stack.push(m);
  }
  return false;
}

async function allEdges(tx) {
  return /** @type {{id:string,from:string,to:string}[]} */ (
    await tx.scan({prefix: 'edge/'}).values().toArray()
  );
}

/**
 * Returns the mutators of one canvas.
 *
 * @param {string} canvasID the canvas id (written into the `canvas` key).
 * @param {{uncheckedCreateEdge?: boolean}} [opts]
 *   uncheckedCreateEdge: createEdge skips every graph rule (nodes live,
 *   from != to, no duplicate, acyclic) and writes the edge optimistically.
 *   Only for tests that need the server to be the one rejecting an edge.
 */
export function makeMutators(canvasID, opts = {}) {
  const {uncheckedCreateEdge = false} = opts;

  return {
    async createNode(tx, args) {
      if (!isObj(args) || !validID(args.id)) return;
      const node = {
        id: args.id,
        kind: args.kind,
        x: args.x,
        y: args.y,
        w: args.w ?? 200,
        h: args.h ?? 120,
        title: args.title ?? '',
        body: args.body ?? '',
      };
      for (const f of NODE_FIELDS) if (!FIELD_OK[f](node[f])) return;
      if (await tx.has(nodeKey(node.id))) return; // id already used
      await tx.set(nodeKey(node.id), node);
    },

    async updateNode(tx, args) {
      if (!isObj(args) || !validID(args.id)) return;
      const cur = await tx.get(nodeKey(args.id));
      if (cur === undefined) return;
      const next = {...cur};
      for (const f of NODE_FIELDS) {
        if (args[f] === undefined) continue;
        if (!FIELD_OK[f](args[f])) return; // bad field: whole mutation rejected
        next[f] = args[f];
      }
      await tx.set(nodeKey(args.id), next);
    },

    async moveNode(tx, args) {
      if (!isObj(args) || !validID(args.id)) return;
      if (!validCoord(args.x) || !validCoord(args.y)) return;
      const cur = await tx.get(nodeKey(args.id));
      if (cur === undefined) return;
      await tx.set(nodeKey(args.id), {...cur, x: args.x, y: args.y});
    },

    async deleteNode(tx, args) {
      if (!isObj(args) || !validID(args.id)) return;
      if (!(await tx.has(nodeKey(args.id)))) return;
      for (const e of await allEdges(tx)) {
        if (e.from === args.id || e.to === args.id) await tx.del(edgeKey(e.id));
      }
      await tx.del(nodeKey(args.id));
    },

    async createEdge(tx, args) {
      if (!isObj(args) || !validID(args.id) || !validID(args.from) || !validID(args.to)) {
        return;
      }
      const edge = {id: args.id, from: args.from, to: args.to};
      if (!uncheckedCreateEdge) {
        if (await tx.has(edgeKey(edge.id))) return; // id already used
        if (edge.from === edge.to) return;
        if (!(await tx.has(nodeKey(edge.from))) || !(await tx.has(nodeKey(edge.to)))) return;
        const edges = await allEdges(tx);
        if (edges.some((e) => e.from === edge.from && e.to === edge.to)) return;
        // Adding from -> to closes a cycle iff `to` already reaches `from`.
        if (reaches(edges, edge.to, edge.from)) return;
      }
      await tx.set(edgeKey(edge.id), edge);
    },

    async deleteEdge(tx, args) {
      if (!isObj(args) || !validID(args.id)) return;
      if (!(await tx.has(edgeKey(args.id)))) return;
      await tx.del(edgeKey(args.id));
    },

    async updateCanvas(tx, args) {
      if (!isObj(args) || !validTitle(args.title)) return;
      await tx.set(CANVAS_KEY, {id: canvasID, title: args.title});
    },
  };
}

/**
 * Checks the graph invariants of a snapshot ({key: value}); returns a list of
 * violations (empty when the snapshot is consistent).
 */
export function invariantViolations(snap) {
  const problems = [];
  const nodes = new Set();
  const edges = [];
  for (const [k, v] of Object.entries(snap)) {
    if (k.startsWith('node/')) nodes.add(v.id);
    else if (k.startsWith('edge/')) edges.push(v);
  }
  const pairs = new Set();
  for (const e of edges) {
    if (!nodes.has(e.from)) problems.push(`edge ${e.id}: from ${e.from} missing`);
    if (!nodes.has(e.to)) problems.push(`edge ${e.id}: to ${e.to} missing`);
    if (e.from === e.to) problems.push(`edge ${e.id}: self loop`);
    const p = `${e.from}\u0000${e.to}`;
    if (pairs.has(p)) problems.push(`edge ${e.id}: duplicate ${e.from}->${e.to}`);
    pairs.add(p);
  }
  for (const e of edges) {
    const others = edges.filter((o) => o !== e);
    if (reaches(others, e.to, e.from)) {
      problems.push(`edge ${e.id}: on a cycle`);
      break;
    }
  }
  return problems;
}

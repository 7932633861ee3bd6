// src/types.ts
var CANVAS_KEY = "canvas";
var NODE_PREFIX = "node/";
var EDGE_PREFIX = "edge/";
var nodeKey = (id) => NODE_PREFIX + id;
var edgeKey = (id) => EDGE_PREFIX + id;
var ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
var KIND_PATTERN = /^[a-z0-9_-]{1,32}$/;
var DEFAULT_LIMITS = Object.freeze({
  maxTitle: 200,
  maxBody: 64 << 10,
  maxCoord: 1e7,
  maxSize: 1e5,
  maxNodes: 5e4,
  maxEdges: 1e5
});
var DEFAULT_W = 200;
var DEFAULT_H = 120;

// src/mutators.ts
var Refused = class extends Error {
};
var OK = Object.freeze({ ok: true });
var ABSENT = /* @__PURE__ */ Symbol("absent");
function fields(mutator, args, names) {
  if (args === null || typeof args !== "object" || Array.isArray(args)) {
    throw new Refused(`${mutator}: args must be a JSON object`);
  }
  const out = {};
  const obj = args;
  for (const n of names) {
    out[n] = ABSENT;
    if (!Object.prototype.hasOwnProperty.call(obj, n)) continue;
    const v = obj[n];
    if (v === void 0 || typeof v === "function" || typeof v === "symbol") continue;
    out[n] = v;
  }
  return out;
}
var LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;
function present(mutator, field, v) {
  if (v === ABSENT) throw new Refused(`${mutator}: ${field} is required`);
  if (v === null) throw new Refused(`${mutator}: ${field} must not be null`);
  return v;
}
function str(mutator, field, v) {
  const s = present(mutator, field, v);
  if (typeof s !== "string") throw new Refused(`${mutator}: ${field} must be a string`);
  if (s.includes("\0")) throw new Refused(`${mutator}: ${field} must not contain NUL characters`);
  return s.replace(LONE_SURROGATE, "�");
}
function num(mutator, field, v) {
  const n = present(mutator, field, v);
  if (typeof n !== "number") throw new Refused(`${mutator}: ${field} must be a number`);
  if (!Number.isFinite(n)) throw new Refused(`${mutator}: ${field} must not be null`);
  return n;
}
function utf8Length(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 128) n += 1;
    else if (c < 2048) n += 2;
    else if (c >= 55296 && c <= 56319 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 56320 && d <= 57343) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}
function codePoints(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 55296 && c <= 56319 && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 56320 && d <= 57343) i++;
    }
    n++;
  }
  return n;
}
var Decoder = class {
  constructor(mutator, lim) {
    this.mutator = mutator;
    this.lim = lim;
  }
  mutator;
  lim;
  id(field, v) {
    const s = str(this.mutator, field, v);
    if (!ID_PATTERN.test(s)) throw new Refused(`${this.mutator}: ${field} must match ^[A-Za-z0-9_-]{1,64}$`);
    return s;
  }
  kind(v) {
    const s = str(this.mutator, "kind", v);
    if (!KIND_PATTERN.test(s)) throw new Refused(`${this.mutator}: kind must match ^[a-z0-9_-]{1,32}$`);
    return s;
  }
  title(v) {
    const s = str(this.mutator, "title", v);
    if (s.length > this.lim.maxTitle && codePoints(s) > this.lim.maxTitle) {
      throw new Refused(`${this.mutator}: title is longer than ${this.lim.maxTitle} characters`);
    }
    return s;
  }
  body(v) {
    const s = str(this.mutator, "body", v);
    if (s.length > this.lim.maxBody / 3 && utf8Length(s) > this.lim.maxBody) {
      throw new Refused(`${this.mutator}: body is longer than ${this.lim.maxBody} bytes`);
    }
    return s;
  }
  coord(field, v) {
    const n = num(this.mutator, field, v);
    if (!(Math.abs(n) <= this.lim.maxCoord)) {
      throw new Refused(`${this.mutator}: ${field} must be within ±${this.lim.maxCoord}`);
    }
    return n;
  }
  size(field, v) {
    const n = num(this.mutator, field, v);
    this.checkSize(field, n);
    return n;
  }
  checkSize(field, n) {
    if (!(n > 0 && n <= this.lim.maxSize)) {
      throw new Refused(`${this.mutator}: ${field} must be > 0 and <= ${this.lim.maxSize}`);
    }
  }
};
var NODE_FIELDS = ["id", "kind", "x", "y", "w", "h", "title", "body"];
async function liveEdges(tx) {
  return await tx.scan({ prefix: EDGE_PREFIX }).values().toArray();
}
function reaches(edges, start, target) {
  const out = /* @__PURE__ */ new Map();
  for (const e of edges) {
    let l = out.get(e.from);
    if (l === void 0) out.set(e.from, l = []);
    l.push(e.to);
  }
  const seen = /* @__PURE__ */ new Set([start]);
  const stack = [start];
  while (stack.length > 0) {
    for (const next of out.get(stack.pop()) ?? []) {
      if (next === target) return true;
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return false;
}
async function countKeys(tx, prefix, atLeast) {
  let n = 0;
  for await (const _ of tx.scan({ prefix }).keys()) {
    if (++n >= atLeast) return true;
  }
  return false;
}
function makeMutators(canvasID, opts = {}) {
  const lim = { ...DEFAULT_LIMITS, ...opts.limits };
  const run = async (fn) => {
    try {
      await fn();
      return OK;
    } catch (err) {
      if (err instanceof Refused) return { ok: false, error: err.message };
      throw err;
    }
  };
  return {
    async createNode(tx, args) {
      return run(async () => {
        const d = new Decoder("createNode", lim);
        const a = fields("createNode", args, NODE_FIELDS);
        const id = d.id("id", a.id);
        const node = {
          id,
          kind: d.kind(a.kind),
          x: d.coord("x", a.x),
          y: d.coord("y", a.y),
          w: a.w === ABSENT ? (d.checkSize("w", DEFAULT_W), DEFAULT_W) : d.size("w", a.w),
          h: a.h === ABSENT ? (d.checkSize("h", DEFAULT_H), DEFAULT_H) : d.size("h", a.h),
          title: a.title === ABSENT ? "" : d.title(a.title),
          body: a.body === ABSENT ? "" : d.body(a.body)
        };
        if (await tx.has(nodeKey(id))) throw new Refused(`createNode: node ${id} already exists`);
        if (await countKeys(tx, NODE_PREFIX, lim.maxNodes)) throw new Refused("createNode: canvas has too many nodes");
        await tx.set(nodeKey(id), node);
      });
    },
    async updateNode(tx, args) {
      return run(async () => {
        const d = new Decoder("updateNode", lim);
        const a = fields("updateNode", args, NODE_FIELDS);
        const id = d.id("id", a.id);
        const patch = {};
        if (a.kind !== ABSENT) patch.kind = d.kind(a.kind);
        if (a.title !== ABSENT) patch.title = d.title(a.title);
        if (a.body !== ABSENT) patch.body = d.body(a.body);
        if (a.x !== ABSENT) patch.x = d.coord("x", a.x);
        if (a.y !== ABSENT) patch.y = d.coord("y", a.y);
        if (a.w !== ABSENT) patch.w = d.size("w", a.w);
        if (a.h !== ABSENT) patch.h = d.size("h", a.h);
        const cur = await tx.get(nodeKey(id));
        if (cur === void 0) throw new Refused(`updateNode: node ${id} does not exist`);
        await tx.set(nodeKey(id), { ...cur, ...patch });
      });
    },
    async moveNode(tx, args) {
      return run(async () => {
        const d = new Decoder("moveNode", lim);
        const a = fields("moveNode", args, ["id", "x", "y"]);
        const id = d.id("id", a.id);
        const x = d.coord("x", a.x);
        const y = d.coord("y", a.y);
        const cur = await tx.get(nodeKey(id));
        if (cur === void 0) throw new Refused(`moveNode: node ${id} does not exist`);
        await tx.set(nodeKey(id), { ...cur, x, y });
      });
    },
    async deleteNode(tx, args) {
      return run(async () => {
        const id = new Decoder("deleteNode", lim).id("id", fields("deleteNode", args, ["id"]).id);
        if (!await tx.has(nodeKey(id))) return;
        for (const e of await liveEdges(tx)) {
          if (e.from === id || e.to === id) await tx.del(edgeKey(e.id));
        }
        await tx.del(nodeKey(id));
      });
    },
    async createEdge(tx, args) {
      return run(async () => {
        const d = new Decoder("createEdge", lim);
        const a = fields("createEdge", args, ["id", "from", "to"]);
        const edge = { id: d.id("id", a.id), from: d.id("from", a.from), to: d.id("to", a.to) };
        if (await tx.has(edgeKey(edge.id))) throw new Refused(`createEdge: edge ${edge.id} already exists`);
        if (!await tx.has(nodeKey(edge.from))) throw new Refused(`createEdge: node ${edge.from} does not exist`);
        if (!await tx.has(nodeKey(edge.to))) throw new Refused(`createEdge: node ${edge.to} does not exist`);
        if (edge.from === edge.to) throw new Refused("createEdge: edge would connect a node to itself");
        const edges = await liveEdges(tx);
        if (edges.some((e) => e.from === edge.from && e.to === edge.to)) {
          throw new Refused(`createEdge: an edge from ${edge.from} to ${edge.to} already exists`);
        }
        if (edges.length >= lim.maxEdges) throw new Refused("createEdge: canvas has too many edges");
        if (reaches(edges, edge.to, edge.from)) throw new Refused("createEdge: edge would close a cycle");
        await tx.set(edgeKey(edge.id), edge);
      });
    },
    async deleteEdge(tx, args) {
      return run(async () => {
        const id = new Decoder("deleteEdge", lim).id("id", fields("deleteEdge", args, ["id"]).id);
        if (await tx.has(edgeKey(id))) await tx.del(edgeKey(id));
      });
    },
    async updateCanvas(tx, args) {
      return run(async () => {
        const title = new Decoder("updateCanvas", lim).title(fields("updateCanvas", args, ["title"]).title);
        await tx.set(CANVAS_KEY, { id: canvasID, title });
      });
    }
  };
}
function wouldCycle(edges, from, to) {
  return from === to || reaches(edges, to, from);
}

export {
  CANVAS_KEY,
  NODE_PREFIX,
  EDGE_PREFIX,
  nodeKey,
  edgeKey,
  ID_PATTERN,
  KIND_PATTERN,
  DEFAULT_LIMITS,
  DEFAULT_W,
  DEFAULT_H,
  makeMutators,
  wouldCycle
};

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

// src/connect.ts
import { Replicache } from "replicache";

// src/subscribable.ts
var Cell = class {
  #value;
  #subs = /* @__PURE__ */ new Set();
  #equal;
  constructor(value, equal = Object.is) {
    this.#value = value;
    this.#equal = equal;
  }
  get value() {
    return this.#value;
  }
  set(value) {
    if (this.#equal(this.#value, value)) return;
    this.#value = value;
    for (const fn of [...this.#subs]) fn(value);
  }
  subscribe(fn) {
    this.#subs.add(fn);
    fn(this.#value);
    return () => {
      this.#subs.delete(fn);
    };
  }
};

// src/connect.ts
var PRESENCE_REFRESH_MS = 1e4;
var CanvasClient = class extends Replicache {
  canvasID;
  #base;
  #auth;
  #token;
  #online = new Cell(false);
  #pending = new Cell(0);
  #stream = new Cell("connecting");
  #peers = new Cell([]);
  #peerMap = /* @__PURE__ */ new Map();
  #nodes;
  #edges;
  #canvas;
  #abort = new AbortController();
  #lastEventID = "";
  #retryMs = 0;
  #timers = /* @__PURE__ */ new Set();
  #pendingTimer;
  #ended = false;
  #presence = null;
  #presenceSent = 0;
  #presenceTimer;
  #refreshTimer;
  #presenceBusy = false;
  #presenceDirty = false;
  #presenceInterval;
  constructor(opts) {
    const base = (opts.server ?? "").replace(/\/+$/, "");
    const canvasURL = `${base}/api/canvases/${encodeURIComponent(opts.canvasID)}`;
    super({
      name: opts.name ?? `canvasd/${opts.canvasID}/${opts.userID ?? "anon"}`,
      pushURL: `${canvasURL}/replicache/push`,
      pullURL: `${canvasURL}/replicache/pull`,
      // Pokes say when to pull; a slow fallback covers a stream that is down.
      pullInterval: 6e4,
      pushDelay: 10,
      requestOptions: { minDelayMs: 30, maxDelayMs: 5e3 },
      kvStore: opts.kvStore,
      logLevel: opts.logLevel ?? "error",
      mutators: makeMutators(opts.canvasID, { limits: opts.limits })
    });
    this.canvasID = opts.canvasID;
    this.#base = canvasURL;
    this.#auth = opts.auth;
    this.#presenceInterval = opts.presenceInterval ?? 50;
    if (typeof opts.auth === "string") this.#token = opts.auth;
    else if (typeof opts.auth === "function") {
      try {
        const t = opts.auth();
        if (typeof t === "string") this.#token = t;
      } catch {
      }
    }
    if (this.#token) this.auth = `Bearer ${this.#token}`;
    this.getAuth = async () => {
      const t = await this.#refreshToken();
      return t ? `Bearer ${t}` : t;
    };
    this.onOnlineChange = () => this.#updateOnline();
    this.#pendingTimer = setInterval(() => void this.#updatePending(), 250);
    if (typeof window !== "undefined") {
      window.addEventListener("online", this.#wentOnline);
      window.addEventListener("offline", this.#wentOffline);
      window.addEventListener("pagehide", this.#pageHide);
    }
    void this.#runStream();
  }
  /** Whether the server is reachable: the event stream is open and the last push or pull went through. */
  get connected() {
    return this.#online;
  }
  /** How many local mutations the server has not acknowledged yet. */
  get pending() {
    return this.#pending;
  }
  /** The event stream's state (e.g. 'unauthorized' when the token is refused and no new one came). */
  get stream() {
    return this.#stream;
  }
  /** Every node, sorted by id. */
  nodes() {
    return this.#nodes ??= this.#query((tx) => tx.scan({ prefix: NODE_PREFIX }).values().toArray(), []);
  }
  /** Every edge, sorted by id. */
  edges() {
    return this.#edges ??= this.#query((tx) => tx.scan({ prefix: EDGE_PREFIX }).values().toArray(), []);
  }
  /** The canvas itself (id, title); undefined until the first pull. */
  canvas() {
    return this.#canvas ??= this.#query((tx) => tx.get(CANVAS_KEY), void 0);
  }
  /** The other clients present on the canvas, with their latest state. */
  presence() {
    return this.#peers;
  }
  /**
   * Shares this client's state (cursor, selection, name…) with the others;
   * null withdraws it. Calls are throttled: the newest state is sent.
   */
  setPresence(state) {
    this.#presence = state;
    this.#presenceDirty = true;
    this.#schedulePresence();
  }
  /**
   * Resolves once the server has acknowledged every local mutation made so
   * far (rejects after timeoutMs, default 30 s).
   */
  async whenSynced(timeoutMs = 3e4) {
    const deadline = Date.now() + timeoutMs;
    for (; ; ) {
      const n = (await this.experimentalPendingMutations()).length;
      this.#pending.set(n);
      if (n === 0) return;
      if (Date.now() > deadline) throw new Error(`${n} mutations still unacknowledged after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  async close() {
    if (this.#ended) return super.close();
    this.#ended = true;
    this.#abort.abort();
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#pendingTimer);
    clearTimeout(this.#presenceTimer);
    clearTimeout(this.#refreshTimer);
    if (typeof window !== "undefined") {
      window.removeEventListener("online", this.#wentOnline);
      window.removeEventListener("offline", this.#wentOffline);
      window.removeEventListener("pagehide", this.#pageHide);
    }
    if (this.#presence !== null) void this.#postPresence(null, true).catch(() => {
    });
    this.#stream.set("closed");
    this.#online.set(false);
    return super.close();
  }
  // ---- subscriptions ----
  #query(body, initial) {
    const cell = new Cell(initial);
    this.subscribe(body, { onData: (v) => cell.set(v) });
    return cell;
  }
  async #updatePending() {
    if (this.closed) return;
    try {
      this.#pending.set((await this.experimentalPendingMutations()).length);
    } catch {
    }
  }
  #updateOnline() {
    const navOnline = typeof navigator === "undefined" || navigator.onLine !== false;
    this.#online.set(!this.#ended && navOnline && this.online && this.#stream.value === "open");
  }
  // ---- auth ----
  async #refreshToken() {
    if (typeof this.#auth === "function") {
      this.#token = await this.#auth() ?? void 0;
      this.auth = this.#token ? `Bearer ${this.#token}` : "";
    }
    return this.#token;
  }
  #headers(extra = {}) {
    return this.#token ? { ...extra, Authorization: `Bearer ${this.#token}` } : extra;
  }
  // ---- the event stream ----
  #later(ms, fn) {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }
  #wentOnline = () => {
    this.#updateOnline();
    this.#abort.abort();
    void this.push({ now: true }).catch(() => {
    });
  };
  #wentOffline = () => {
    this.#abort.abort();
    this.#updateOnline();
  };
  #pageHide = () => {
    if (this.#presence !== null) void this.#postPresence(null, true).catch(() => {
    });
  };
  async #runStream() {
    if (typeof this.#auth === "function" && this.#token === void 0) {
      try {
        await this.#refreshToken();
      } catch {
      }
    }
    let authRetried = false;
    while (!this.#ended) {
      this.#abort = new AbortController();
      const signal = this.#abort.signal;
      let status = 0;
      let retryAfter = 0;
      try {
        const headers = this.#headers({ Accept: "text/event-stream" });
        if (this.#lastEventID) headers["Last-Event-ID"] = this.#lastEventID;
        const url = `${this.#base}/events?clientID=${encodeURIComponent(this.clientID)}`;
        const res = await fetch(url, { headers, signal, cache: "no-store" });
        status = res.status;
        retryAfter = Number(res.headers.get("Retry-After")) * 1e3 || 0;
        if (res.ok && res.body) {
          authRetried = false;
          this.#stream.set("open");
          this.#retryMs = 0;
          this.#peerMap.clear();
          this.#peers.set([]);
          this.#updateOnline();
          void this.pull({ now: true }).catch(() => {
          });
          if (this.#presence !== null) {
            this.#presenceDirty = true;
            this.#schedulePresence();
          }
          await this.#read(res.body, signal);
        } else {
          await res.body?.cancel().catch(() => {
          });
        }
      } catch {
      }
      if (this.#ended) break;
      this.#peerMap.clear();
      this.#peers.set([]);
      if (status === 401) {
        if (typeof this.#auth === "function" && !authRetried) {
          authRetried = true;
          try {
            await this.#refreshToken();
            continue;
          } catch {
          }
        }
        this.#stream.set("unauthorized");
      } else if (status === 403) {
        this.#stream.set("forbidden");
      } else if (status === 404) {
        this.#stream.set("not-found");
      } else {
        this.#stream.set("retrying");
      }
      this.#updateOnline();
      this.#retryMs = Math.min(1e4, this.#retryMs ? this.#retryMs * 2 : 500);
      const wait = Math.max(retryAfter, this.#retryMs * (0.5 + Math.random() / 2));
      const offline = typeof navigator !== "undefined" && navigator.onLine === false;
      await new Promise((resolve) => {
        const hasWindow = typeof window !== "undefined";
        const stop = () => {
          if (hasWindow) window.removeEventListener("online", stop);
          resolve();
        };
        this.#later(wait, stop);
        if (offline && hasWindow) window.addEventListener("online", stop);
      });
    }
  }
  async #read(body, signal) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    const onAbort = () => void reader.cancel().catch(() => {
    });
    signal.addEventListener("abort", onAbort);
    let buf = "";
    let event = "";
    let data = [];
    try {
      for (; ; ) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += value;
        let nl;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith("\r\n", nl) ? 2 : 1));
          if (line === "") {
            if (data.length > 0) this.#dispatch(event || "message", data.join("\n"));
            event = "";
            data = [];
            continue;
          }
          if (line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? "" : line.slice(colon + 1);
          if (val.startsWith(" ")) val = val.slice(1);
          if (field === "event") event = val;
          else if (field === "data") data.push(val);
          else if (field === "id" && !val.includes("\0")) this.#lastEventID = val;
          else if (field === "retry" && /^\d+$/.test(val)) this.#retryMs = Number(val) / 2;
        }
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
  #dispatch(event, data) {
    if (event === "poke") {
      void this.pull({ now: true }).catch(() => {
      });
    } else if (event === "presence") {
      let p;
      try {
        p = JSON.parse(data);
      } catch {
        return;
      }
      if (typeof p.clientID !== "string" || p.clientID === this.clientID) return;
      if (p.state === null || typeof p.state !== "object") this.#peerMap.delete(p.clientID);
      else this.#peerMap.set(p.clientID, { clientID: p.clientID, user: typeof p.user === "string" ? p.user : "", state: p.state });
      this.#peers.set([...this.#peerMap.values()]);
    }
  }
  // ---- presence ----
  #schedulePresence() {
    clearTimeout(this.#refreshTimer);
    if (this.#ended || this.#presenceBusy || this.#presenceTimer !== void 0) return;
    const wait = Math.max(0, this.#presenceSent + this.#presenceInterval - Date.now());
    this.#presenceTimer = setTimeout(() => {
      this.#presenceTimer = void 0;
      void this.#flushPresence();
    }, wait);
  }
  async #flushPresence() {
    if (this.#ended) return;
    if (!this.#presenceDirty && this.#presence === null) return;
    this.#presenceDirty = false;
    this.#presenceBusy = true;
    this.#presenceSent = Date.now();
    try {
      await this.#postPresence(this.#presence, false);
    } catch {
    } finally {
      this.#presenceBusy = false;
    }
    if (this.#presenceDirty) this.#schedulePresence();
    else if (this.#presence !== null && !this.#ended) {
      clearTimeout(this.#refreshTimer);
      this.#refreshTimer = setTimeout(() => this.#schedulePresence(), PRESENCE_REFRESH_MS);
    }
  }
  async #postPresence(state, keepalive) {
    const send = () => fetch(`${this.#base}/presence`, {
      method: "POST",
      headers: this.#headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ clientID: this.clientID, state }),
      keepalive
    });
    let res = await send();
    if (res.status === 401 && typeof this.#auth === "function") {
      await this.#refreshToken();
      res = await send();
    }
  }
};
async function connect(opts) {
  const client = new CanvasClient(opts);
  const timeout = opts.readyTimeout ?? 5e3;
  await new Promise((resolve) => {
    const timer = setTimeout(done, timeout);
    const stop = client.subscribe((tx) => tx.has(CANVAS_KEY), {
      onData: (has) => {
        if (has) done();
      }
    });
    function done() {
      clearTimeout(timer);
      stop();
      resolve();
    }
  });
  return client;
}
export {
  CANVAS_KEY,
  CanvasClient,
  Cell,
  DEFAULT_H,
  DEFAULT_LIMITS,
  DEFAULT_W,
  EDGE_PREFIX,
  ID_PATTERN,
  KIND_PATTERN,
  NODE_PREFIX,
  connect,
  edgeKey,
  makeMutators,
  nodeKey,
  wouldCycle
};

import {
  CANVAS_KEY,
  DEFAULT_H,
  DEFAULT_LIMITS,
  DEFAULT_W,
  EDGE_PREFIX,
  ID_PATTERN,
  KIND_PATTERN,
  NODE_PREFIX,
  edgeKey,
  makeMutators,
  nodeKey,
  wouldCycle
} from "./chunk-2OXAAXFE.js";

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

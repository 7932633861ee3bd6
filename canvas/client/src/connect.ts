// connect(): a Replicache wired to one canvas of a canvasd server — push
// and pull, the event stream whose pokes trigger pulls, presence, and the
// state a UI shows (online, unsent changes).

import {Replicache, type ReadTransaction} from 'replicache';
import {makeMutators, type CanvasMutators} from './mutators.js';
import {Cell, type Subscribable} from './subscribable.js';
import {CANVAS_KEY, EDGE_PREFIX, NODE_PREFIX, type Canvas, type Edge, type Limits, type Node} from './types.js';

/** A token, or a function returning one (called again after a 401). */
export type AuthOption = string | (() => string | null | undefined | Promise<string | null | undefined>);

export interface ConnectOptions {
  /** Base URL of canvasd, e.g. "https://canvas.example.com"; "" or omitted: this page's origin. */
  server?: string;
  canvasID: string;
  /**
   * The bearer token when canvasd runs with authentication. It goes in the
   * Authorization header of push, pull, presence and the event stream. A
   * function is asked again whenever the server answers 401.
   */
  auth?: AuthOption;
  /** Who is signed in; names the local store so users of one browser do not share it. */
  userID?: string;
  /** The Replicache name (default `canvasd/<canvasID>/<userID>`). */
  name?: string;
  /** The server's mutation limits, if configured other than the defaults. */
  limits?: Partial<Limits>;
  /** 'idb' (default in browsers: survives reloads, offline edits kept) or 'mem'. */
  kvStore?: 'idb' | 'mem';
  /** Presence posts at most this often, in ms (default 50; the server delivers ≤ 30/s). */
  presenceInterval?: number;
  /** How long connect() waits for the first pull before resolving anyway (ms, default 5000). */
  readyTimeout?: number;
  logLevel?: 'debug' | 'info' | 'error';
}

/** Another client on the canvas, as its presence tells. */
export interface Peer<S = PresenceState> {
  clientID: string;
  /** The authenticated user (the token's sub), "" without authentication. */
  user: string;
  state: S;
}

/** What a client shares of itself; any JSON object up to 2 KiB. */
export type PresenceState = {readonly [key: string]: unknown};

/** Why the event stream is not running, if it is not. */
export type StreamState = 'connecting' | 'open' | 'retrying' | 'unauthorized' | 'forbidden' | 'not-found' | 'closed';

const PRESENCE_REFRESH_MS = 10_000; // the server forgets presence after 30 s by default

/** A Replicache of one canvas, connected. */
export class CanvasClient extends Replicache<CanvasMutators> {
  readonly canvasID: string;
  readonly #base: string;
  readonly #auth: AuthOption | undefined;
  #token: string | undefined;

  readonly #online = new Cell(false);
  readonly #pending = new Cell(0);
  readonly #stream = new Cell<StreamState>('connecting');
  readonly #peers = new Cell<readonly Peer[]>([]);
  readonly #peerMap = new Map<string, Peer>();
  #nodes: Subscribable<readonly Node[]> | undefined;
  #edges: Subscribable<readonly Edge[]> | undefined;
  #canvas: Subscribable<Canvas | undefined> | undefined;

  #abort = new AbortController();
  #lastEventID = '';
  #retryMs = 0;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #pendingTimer: ReturnType<typeof setInterval> | undefined;
  #ended = false;

  #presence: PresenceState | null = null;
  #presenceSent = 0;
  #presenceTimer: ReturnType<typeof setTimeout> | undefined;
  #refreshTimer: ReturnType<typeof setTimeout> | undefined;
  #presenceBusy = false;
  #presenceDirty = false;
  readonly #presenceInterval: number;

  constructor(opts: ConnectOptions) {
    const base = (opts.server ?? '').replace(/\/+$/, '');
    const canvasURL = `${base}/api/canvases/${encodeURIComponent(opts.canvasID)}`;
    super({
      name: opts.name ?? `canvasd/${opts.canvasID}/${opts.userID ?? 'anon'}`,
      pushURL: `${canvasURL}/replicache/push`,
      pullURL: `${canvasURL}/replicache/pull`,
      // Pokes say when to pull; a slow fallback covers a stream that is down.
      pullInterval: 60_000,
      pushDelay: 10,
      requestOptions: {minDelayMs: 30, maxDelayMs: 5_000},
      kvStore: opts.kvStore,
      logLevel: opts.logLevel ?? 'error',
      mutators: makeMutators(opts.canvasID, {limits: opts.limits}),
    });
    this.canvasID = opts.canvasID;
    this.#base = canvasURL;
    this.#auth = opts.auth;
    this.#presenceInterval = opts.presenceInterval ?? 50;
    if (typeof opts.auth === 'string') this.#token = opts.auth;
    else if (typeof opts.auth === 'function') {
      // A token at hand now saves the first requests a 401 round trip.
      try {
        const t = opts.auth();
        if (typeof t === 'string') this.#token = t;
      } catch {
        // asked again on the first 401
      }
    }
    if (this.#token) this.auth = `Bearer ${this.#token}`;
    // Replicache asks for new auth when push or pull answers 401.
    this.getAuth = async () => {
      const t = await this.#refreshToken();
      return t ? `Bearer ${t}` : t;
    };
    this.onOnlineChange = () => this.#updateOnline();
    this.#pendingTimer = setInterval(() => void this.#updatePending(), 250);
    if (typeof window !== 'undefined') {
      window.addEventListener('online', this.#wentOnline);
      window.addEventListener('offline', this.#wentOffline);
      window.addEventListener('pagehide', this.#pageHide);
    }
    void this.#runStream();
  }

  /** Whether the server is reachable: the event stream is open and the last push or pull went through. */
  get connected(): Subscribable<boolean> {
    return this.#online;
  }

  /** How many local mutations the server has not acknowledged yet. */
  get pending(): Subscribable<number> {
    return this.#pending;
  }

  /** The event stream's state (e.g. 'unauthorized' when the token is refused and no new one came). */
  get stream(): Subscribable<StreamState> {
    return this.#stream;
  }

  /** Every node, sorted by id. */
  nodes(): Subscribable<readonly Node[]> {
    return (this.#nodes ??= this.#query((tx) => tx.scan({prefix: NODE_PREFIX}).values().toArray() as unknown as Promise<Node[]>, []));
  }

  /** Every edge, sorted by id. */
  edges(): Subscribable<readonly Edge[]> {
    return (this.#edges ??= this.#query((tx) => tx.scan({prefix: EDGE_PREFIX}).values().toArray() as unknown as Promise<Edge[]>, []));
  }

  /** The canvas itself (id, title); undefined until the first pull. */
  canvas(): Subscribable<Canvas | undefined> {
    return (this.#canvas ??= this.#query((tx) => tx.get(CANVAS_KEY) as Promise<Canvas | undefined>, undefined));
  }

  /** The other clients present on the canvas, with their latest state. */
  presence<S = PresenceState>(): Subscribable<readonly Peer<S>[]> {
    return this.#peers as unknown as Subscribable<readonly Peer<S>[]>;
  }

  /**
   * Shares this client's state (cursor, selection, name…) with the others;
   * null withdraws it. Calls are throttled: the newest state is sent.
   */
  setPresence(state: PresenceState | null): void {
    this.#presence = state;
    this.#presenceDirty = true;
    this.#schedulePresence();
  }

  /**
   * Resolves once the server has acknowledged every local mutation made so
   * far (rejects after timeoutMs, default 30 s).
   */
  async whenSynced(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = (await this.experimentalPendingMutations()).length;
      this.#pending.set(n);
      if (n === 0) return;
      if (Date.now() > deadline) throw new Error(`${n} mutations still unacknowledged after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  override async close(): Promise<void> {
    if (this.#ended) return super.close();
    this.#ended = true;
    this.#abort.abort();
    for (const t of this.#timers) clearTimeout(t);
    clearInterval(this.#pendingTimer);
    clearTimeout(this.#presenceTimer);
    clearTimeout(this.#refreshTimer);
    if (typeof window !== 'undefined') {
      window.removeEventListener('online', this.#wentOnline);
      window.removeEventListener('offline', this.#wentOffline);
      window.removeEventListener('pagehide', this.#pageHide);
    }
    if (this.#presence !== null) void this.#postPresence(null, true).catch(() => {});
    this.#stream.set('closed');
    this.#online.set(false);
    return super.close();
  }

  // ---- subscriptions ----

  #query<T>(body: (tx: ReadTransaction) => Promise<T>, initial: T): Subscribable<T> {
    const cell = new Cell<T>(initial);
    this.subscribe(body, {onData: (v) => cell.set(v)});
    return cell;
  }

  async #updatePending(): Promise<void> {
    if (this.closed) return;
    try {
      this.#pending.set((await this.experimentalPendingMutations()).length);
    } catch {
      // closed meanwhile
    }
  }

  #updateOnline(): void {
    const navOnline = typeof navigator === 'undefined' || navigator.onLine !== false;
    this.#online.set(!this.#ended && navOnline && this.online && this.#stream.value === 'open');
  }

  // ---- auth ----

  async #refreshToken(): Promise<string | undefined> {
    if (typeof this.#auth === 'function') {
      this.#token = (await this.#auth()) ?? undefined;
      this.auth = this.#token ? `Bearer ${this.#token}` : '';
    }
    return this.#token;
  }

  #headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.#token ? {...extra, Authorization: `Bearer ${this.#token}`} : extra;
  }

  // ---- the event stream ----

  #later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      fn();
    }, ms);
    this.#timers.add(t);
  }

  #wentOnline = (): void => {
    this.#updateOnline();
    // Reconnect now rather than at the end of a backoff.
    this.#abort.abort();
    void this.push({now: true}).catch(() => {});
  };

  #wentOffline = (): void => {
    this.#abort.abort();
    this.#updateOnline();
  };

  #pageHide = (): void => {
    if (this.#presence !== null) void this.#postPresence(null, true).catch(() => {});
  };

  async #runStream(): Promise<void> {
    if (typeof this.#auth === 'function' && this.#token === undefined) {
      try {
        await this.#refreshToken();
      } catch {
        // the stream's 401 path asks again
      }
    }
    let authRetried = false;
    while (!this.#ended) {
      this.#abort = new AbortController();
      const signal = this.#abort.signal;
      let status = 0;
      let retryAfter = 0;
      try {
        const headers = this.#headers({Accept: 'text/event-stream'});
        if (this.#lastEventID) headers['Last-Event-ID'] = this.#lastEventID;
        // Naming the client lets the server clear its presence when the stream
        // closes (a closed tab), instead of after the presence TTL.
        const url = `${this.#base}/events?clientID=${encodeURIComponent(this.clientID)}`;
        const res = await fetch(url, {headers, signal, cache: 'no-store'});
        status = res.status;
        retryAfter = Number(res.headers.get('Retry-After')) * 1000 || 0;
        if (res.ok && res.body) {
          authRetried = false;
          this.#stream.set('open');
          this.#retryMs = 0;
          this.#peerMap.clear(); // the stream starts with the current presence
          this.#peers.set([]);
          this.#updateOnline();
          void this.pull({now: true}).catch(() => {}); // pokes may have been missed
          if (this.#presence !== null) {
            this.#presenceDirty = true;
            this.#schedulePresence();
          }
          await this.#read(res.body, signal);
        } else {
          await res.body?.cancel().catch(() => {});
        }
      } catch {
        // network error or aborted: retry below
      }
      if (this.#ended) break;
      this.#peerMap.clear();
      this.#peers.set([]);
      if (status === 401) {
        // Ask for a new token once; if the new one fails too, wait longer.
        if (typeof this.#auth === 'function' && !authRetried) {
          authRetried = true;
          try {
            await this.#refreshToken();
            continue;
          } catch {
            // fall through to the backoff
          }
        }
        this.#stream.set('unauthorized');
      } else if (status === 403) {
        this.#stream.set('forbidden');
      } else if (status === 404) {
        this.#stream.set('not-found');
      } else {
        this.#stream.set('retrying');
      }
      this.#updateOnline();
      // Back off: 0.5 s doubling to 10 s, jittered; the server's hint first.
      this.#retryMs = Math.min(10_000, this.#retryMs ? this.#retryMs * 2 : 500);
      const wait = Math.max(retryAfter, this.#retryMs * (0.5 + Math.random() / 2));
      const offline = typeof navigator !== 'undefined' && navigator.onLine === false;
      await new Promise<void>((resolve) => {
        const hasWindow = typeof window !== 'undefined';
        const stop = (): void => {
          if (hasWindow) window.removeEventListener('online', stop);
          resolve();
        };
        this.#later(wait, stop);
        if (offline && hasWindow) window.addEventListener('online', stop);
      });
    }
  }

  async #read(body: ReadableStream<Uint8Array>, signal: AbortSignal): Promise<void> {
    const reader = body.pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader();
    const onAbort = (): void => void reader.cancel().catch(() => {});
    signal.addEventListener('abort', onAbort);
    let buf = '';
    let event = '';
    let data: string[] = [];
    try {
      for (;;) {
        const {value, done} = await reader.read();
        if (done) return;
        buf += value;
        let nl: number;
        while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
          if (line === '') {
            if (data.length > 0) this.#dispatch(event || 'message', data.join('\n'));
            event = '';
            data = [];
            continue;
          }
          if (line.startsWith(':')) continue; // ping
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let val = colon < 0 ? '' : line.slice(colon + 1);
          if (val.startsWith(' ')) val = val.slice(1);
          if (field === 'event') event = val;
          else if (field === 'data') data.push(val);
          else if (field === 'id' && !val.includes('\0')) this.#lastEventID = val;
          else if (field === 'retry' && /^\d+$/.test(val)) this.#retryMs = Number(val) / 2;
        }
      }
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  #dispatch(event: string, data: string): void {
    if (event === 'poke') {
      void this.pull({now: true}).catch(() => {});
    } else if (event === 'presence') {
      let p: {clientID?: unknown; user?: unknown; state?: unknown};
      try {
        p = JSON.parse(data);
      } catch {
        return;
      }
      if (typeof p.clientID !== 'string' || p.clientID === this.clientID) return;
      if (p.state === null || typeof p.state !== 'object') this.#peerMap.delete(p.clientID);
      else this.#peerMap.set(p.clientID, {clientID: p.clientID, user: typeof p.user === 'string' ? p.user : '', state: p.state as PresenceState});
      this.#peers.set([...this.#peerMap.values()]);
    }
  }

  // ---- presence ----

  #schedulePresence(): void {
    clearTimeout(this.#refreshTimer);
    if (this.#ended || this.#presenceBusy || this.#presenceTimer !== undefined) return;
    const wait = Math.max(0, this.#presenceSent + this.#presenceInterval - Date.now());
    this.#presenceTimer = setTimeout(() => {
      this.#presenceTimer = undefined;
      void this.#flushPresence();
    }, wait);
  }

  async #flushPresence(): Promise<void> {
    if (this.#ended) return;
    if (!this.#presenceDirty && this.#presence === null) return;
    this.#presenceDirty = false;
    this.#presenceBusy = true;
    this.#presenceSent = Date.now();
    try {
      await this.#postPresence(this.#presence, false);
    } catch {
      // Presence is best effort; the next change or refresh sends it again.
    } finally {
      this.#presenceBusy = false;
    }
    if (this.#presenceDirty) this.#schedulePresence();
    else if (this.#presence !== null && !this.#ended) {
      // Refreshed now and then, so the server's presence TTL does not
      // expire a client that sits still.
      clearTimeout(this.#refreshTimer);
      this.#refreshTimer = setTimeout(() => this.#schedulePresence(), PRESENCE_REFRESH_MS);
    }
  }

  async #postPresence(state: PresenceState | null, keepalive: boolean): Promise<void> {
    const send = (): Promise<Response> =>
      fetch(`${this.#base}/presence`, {
        method: 'POST',
        headers: this.#headers({'Content-Type': 'application/json'}),
        body: JSON.stringify({clientID: this.clientID, state}),
        keepalive,
      });
    let res = await send();
    if (res.status === 401 && typeof this.#auth === 'function') {
      await this.#refreshToken();
      res = await send();
    }
  }
}

/**
 * Connects to one canvas: returns its Replicache (a CanvasClient) once the
 * first pull is in, or after opts.readyTimeout when the server cannot be
 * reached (the client then works offline and syncs when it can).
 */
export async function connect(opts: ConnectOptions): Promise<CanvasClient> {
  const client = new CanvasClient(opts);
  const timeout = opts.readyTimeout ?? 5000;
  // Every first pull writes the canvas key: its arrival means the data is in.
  await new Promise<void>((resolve) => {
    const timer = setTimeout(done, timeout);
    const stop = client.subscribe((tx) => tx.has(CANVAS_KEY), {
      onData: (has) => {
        if (has) done();
      },
    });
    function done(): void {
      clearTimeout(timer);
      stop();
      resolve();
    }
  });
  return client;
}

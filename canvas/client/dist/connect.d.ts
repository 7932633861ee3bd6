import { Replicache } from 'replicache';
import { type CanvasMutators } from './mutators.js';
import { type Subscribable } from './subscribable.js';
import { type Canvas, type Edge, type Limits, type Node } from './types.js';
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
export type PresenceState = {
    readonly [key: string]: unknown;
};
/** Why the event stream is not running, if it is not. */
export type StreamState = 'connecting' | 'open' | 'retrying' | 'unauthorized' | 'forbidden' | 'not-found' | 'closed';
/** A Replicache of one canvas, connected. */
export declare class CanvasClient extends Replicache<CanvasMutators> {
    #private;
    readonly canvasID: string;
    constructor(opts: ConnectOptions);
    /** Whether the server is reachable: the event stream is open and the last push or pull went through. */
    get connected(): Subscribable<boolean>;
    /** How many local mutations the server has not acknowledged yet. */
    get pending(): Subscribable<number>;
    /** The event stream's state (e.g. 'unauthorized' when the token is refused and no new one came). */
    get stream(): Subscribable<StreamState>;
    /** Every node, sorted by id. */
    nodes(): Subscribable<readonly Node[]>;
    /** Every edge, sorted by id. */
    edges(): Subscribable<readonly Edge[]>;
    /** The canvas itself (id, title); undefined until the first pull. */
    canvas(): Subscribable<Canvas | undefined>;
    /** The other clients present on the canvas, with their latest state. */
    presence<S = PresenceState>(): Subscribable<readonly Peer<S>[]>;
    /**
     * Shares this client's state (cursor, selection, name…) with the others;
     * null withdraws it. Calls are throttled: the newest state is sent.
     */
    setPresence(state: PresenceState | null): void;
    /**
     * Resolves once the server has acknowledged every local mutation made so
     * far (rejects after timeoutMs, default 30 s).
     */
    whenSynced(timeoutMs?: number): Promise<void>;
    close(): Promise<void>;
}
/**
 * Connects to one canvas: returns its Replicache (a CanvasClient) once the
 * first pull is in, or after opts.readyTimeout when the server cannot be
 * reached (the client then works offline and syncs when it can).
 */
export declare function connect(opts: ConnectOptions): Promise<CanvasClient>;

// The seven mutators of a canvas with exactly the rules canvasd applies
// (canvas/mutation.go decodes and checks the args, canvas/state.go applies
// them). The client runs them optimistically, the server authoritatively; a
// differential test keeps the two in step. A mutation that breaks a rule
// writes nothing and still goes to the server, which skips it for the same
// reason and acknowledges it, so the optimistic state equals the server's.
//
// This module has no runtime imports: it loads without replicache.

import type {WriteTransaction} from 'replicache';
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
  nodeKey,
  type CreateEdgeArgs,
  type CreateNodeArgs,
  type Edge,
  type IDArgs,
  type Limits,
  type MoveNodeArgs,
  type MutationResult,
  type Node,
  type UpdateCanvasArgs,
  type UpdateNodeArgs,
} from './types.js';

export {CANVAS_KEY, edgeKey, nodeKey} from './types.js';

/** Thrown inside a mutator to refuse it; turned into a MutationResult. */
class Refused extends Error {}

const OK: MutationResult = Object.freeze({ok: true}) as MutationResult;

// ---- argument decoding, as the server's encoding/json does it ----

// The server matches object keys to fields exactly (case-sensitively) and
// ignores keys it does not know; a duplicate key never reaches it (the
// whole push is refused), and a JavaScript object cannot hold one.

const ABSENT = Symbol('absent');
type Raw = unknown | typeof ABSENT;

/** The fields of args under the server's key matching; undefined values are absent (JSON drops them). */
function fields<K extends string>(mutator: string, args: unknown, names: readonly K[]): Record<K, Raw> {
  if (args === null || typeof args !== 'object' || Array.isArray(args)) {
    throw new Refused(`${mutator}: args must be a JSON object`);
  }
  const out = {} as Record<K, Raw>;
  const obj = args as Record<string, unknown>;
  for (const n of names) {
    out[n] = ABSENT;
    if (!Object.prototype.hasOwnProperty.call(obj, n)) continue;
    const v = obj[n];
    if (v === undefined || typeof v === 'function' || typeof v === 'symbol') continue;
    out[n] = v;
  }
  return out;
}

// Lone surrogates cannot travel in UTF-8: the server decodes each as U+FFFD.
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

function present(mutator: string, field: string, v: Raw): unknown {
  if (v === ABSENT) throw new Refused(`${mutator}: ${field} is required`);
  if (v === null) throw new Refused(`${mutator}: ${field} must not be null`);
  return v;
}

function str(mutator: string, field: string, v: Raw): string {
  const s = present(mutator, field, v);
  if (typeof s !== 'string') throw new Refused(`${mutator}: ${field} must be a string`);
  if (s.includes('\0')) throw new Refused(`${mutator}: ${field} must not contain NUL characters`);
  return s.replace(LONE_SURROGATE, '\ufffd');
}

function num(mutator: string, field: string, v: Raw): number {
  const n = present(mutator, field, v);
  if (typeof n !== 'number') throw new Refused(`${mutator}: ${field} must be a number`);
  // NaN and ±Infinity travel as null in JSON.
  if (!Number.isFinite(n)) throw new Refused(`${mutator}: ${field} must not be null`);
  return n;
}

function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 4;
        i++;
      } else n += 3;
    } else n += 3;
  }
  return n;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

class Decoder {
  constructor(
    readonly mutator: string,
    readonly lim: Limits,
  ) {}
  id(field: string, v: Raw): string {
    const s = str(this.mutator, field, v);
    if (!ID_PATTERN.test(s)) throw new Refused(`${this.mutator}: ${field} must match ^[A-Za-z0-9_-]{1,64}$`);
    return s;
  }
  kind(v: Raw): string {
    const s = str(this.mutator, 'kind', v);
    if (!KIND_PATTERN.test(s)) throw new Refused(`${this.mutator}: kind must match ^[a-z0-9_-]{1,32}$`);
    return s;
  }
  title(v: Raw): string {
    const s = str(this.mutator, 'title', v);
    if (s.length > this.lim.maxTitle && codePoints(s) > this.lim.maxTitle) {
      throw new Refused(`${this.mutator}: title is longer than ${this.lim.maxTitle} characters`);
    }
    return s;
  }
  body(v: Raw): string {
    const s = str(this.mutator, 'body', v);
    if (s.length > this.lim.maxBody / 3 && utf8Length(s) > this.lim.maxBody) {
      throw new Refused(`${this.mutator}: body is longer than ${this.lim.maxBody} bytes`);
    }
    return s;
  }
  coord(field: string, v: Raw): number {
    const n = num(this.mutator, field, v);
    if (!(Math.abs(n) <= this.lim.maxCoord)) {
      throw new Refused(`${this.mutator}: ${field} must be within ±${this.lim.maxCoord}`);
    }
    return n;
  }
  size(field: string, v: Raw): number {
    const n = num(this.mutator, field, v);
    this.checkSize(field, n);
    return n;
  }
  checkSize(field: string, n: number): void {
    if (!(n > 0 && n <= this.lim.maxSize)) {
      throw new Refused(`${this.mutator}: ${field} must be > 0 and <= ${this.lim.maxSize}`);
    }
  }
}

const NODE_FIELDS = ['id', 'kind', 'x', 'y', 'w', 'h', 'title', 'body'] as const;

// ---- the graph ----

async function liveEdges(tx: WriteTransaction): Promise<Edge[]> {
  return (await tx.scan({prefix: EDGE_PREFIX}).values().toArray()) as unknown as Edge[];
}

/** Whether target can be reached from start along edges. */
function reaches(edges: readonly Edge[], start: string, target: string): boolean {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    let l = out.get(e.from);
    if (l === undefined) out.set(e.from, (l = []));
    l.push(e.to);
  }
  const seen = new Set<string>([start]);
  const stack = [start];
  while (stack.length > 0) {
    for (const next of out.get(stack.pop()!) ?? []) {
      if (next === target) return true;
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return false;
}

async function countKeys(tx: WriteTransaction, prefix: string, atLeast: number): Promise<boolean> {
  let n = 0;
  for await (const _ of tx.scan({prefix}).keys()) {
    if (++n >= atLeast) return true;
  }
  return false;
}

/** Options of makeMutators. */
export interface MutatorOptions {
  /** The server's limits, when it was configured with other than the defaults. */
  limits?: Partial<Limits>;
}

/**
 * The mutators of one canvas, for `new Replicache({mutators})` (connect()
 * does it for you). Each resolves to a MutationResult saying whether the
 * rules let it through.
 */
export function makeMutators(canvasID: string, opts: MutatorOptions = {}) {
  const lim: Limits = {...DEFAULT_LIMITS, ...opts.limits};

  const run = async (fn: () => Promise<void>): Promise<MutationResult> => {
    try {
      await fn();
      return OK;
    } catch (err) {
      if (err instanceof Refused) return {ok: false, error: err.message};
      throw err;
    }
  };

  return {
    async createNode(tx: WriteTransaction, args: CreateNodeArgs): Promise<MutationResult> {
      return run(async () => {
        const d = new Decoder('createNode', lim);
        const a = fields('createNode', args, NODE_FIELDS);
        const id = d.id('id', a.id);
        const node: Node = {
          id,
          kind: d.kind(a.kind),
          x: d.coord('x', a.x),
          y: d.coord('y', a.y),
          w: a.w === ABSENT ? (d.checkSize('w', DEFAULT_W), DEFAULT_W) : d.size('w', a.w),
          h: a.h === ABSENT ? (d.checkSize('h', DEFAULT_H), DEFAULT_H) : d.size('h', a.h),
          title: a.title === ABSENT ? '' : d.title(a.title),
          body: a.body === ABSENT ? '' : d.body(a.body),
        };
        if (await tx.has(nodeKey(id))) throw new Refused(`createNode: node ${id} already exists`);
        if (await countKeys(tx, NODE_PREFIX, lim.maxNodes)) throw new Refused('createNode: canvas has too many nodes');
        await tx.set(nodeKey(id), node);
      });
    },

    async updateNode(tx: WriteTransaction, args: UpdateNodeArgs): Promise<MutationResult> {
      return run(async () => {
        const d = new Decoder('updateNode', lim);
        const a = fields('updateNode', args, NODE_FIELDS);
        const id = d.id('id', a.id);
        const patch: Partial<Record<keyof Node, string | number>> = {};
        if (a.kind !== ABSENT) patch.kind = d.kind(a.kind);
        if (a.title !== ABSENT) patch.title = d.title(a.title);
        if (a.body !== ABSENT) patch.body = d.body(a.body);
        if (a.x !== ABSENT) patch.x = d.coord('x', a.x);
        if (a.y !== ABSENT) patch.y = d.coord('y', a.y);
        if (a.w !== ABSENT) patch.w = d.size('w', a.w);
        if (a.h !== ABSENT) patch.h = d.size('h', a.h);
        const cur = (await tx.get(nodeKey(id))) as Node | undefined;
        if (cur === undefined) throw new Refused(`updateNode: node ${id} does not exist`);
        await tx.set(nodeKey(id), {...cur, ...patch});
      });
    },

    async moveNode(tx: WriteTransaction, args: MoveNodeArgs): Promise<MutationResult> {
      return run(async () => {
        const d = new Decoder('moveNode', lim);
        const a = fields('moveNode', args, ['id', 'x', 'y'] as const);
        const id = d.id('id', a.id);
        const x = d.coord('x', a.x);
        const y = d.coord('y', a.y);
        const cur = (await tx.get(nodeKey(id))) as Node | undefined;
        if (cur === undefined) throw new Refused(`moveNode: node ${id} does not exist`);
        await tx.set(nodeKey(id), {...cur, x, y});
      });
    },

    async deleteNode(tx: WriteTransaction, args: IDArgs): Promise<MutationResult> {
      return run(async () => {
        const id = new Decoder('deleteNode', lim).id('id', fields('deleteNode', args, ['id'] as const).id);
        // Deleting a missing node is not a mistake (two clients, a replay).
        if (!(await tx.has(nodeKey(id)))) return;
        for (const e of await liveEdges(tx)) {
          if (e.from === id || e.to === id) await tx.del(edgeKey(e.id));
        }
        await tx.del(nodeKey(id));
      });
    },

    async createEdge(tx: WriteTransaction, args: CreateEdgeArgs): Promise<MutationResult> {
      return run(async () => {
        const d = new Decoder('createEdge', lim);
        const a = fields('createEdge', args, ['id', 'from', 'to'] as const);
        const edge: Edge = {id: d.id('id', a.id), from: d.id('from', a.from), to: d.id('to', a.to)};
        if (await tx.has(edgeKey(edge.id))) throw new Refused(`createEdge: edge ${edge.id} already exists`);
        if (!(await tx.has(nodeKey(edge.from)))) throw new Refused(`createEdge: node ${edge.from} does not exist`);
        if (!(await tx.has(nodeKey(edge.to)))) throw new Refused(`createEdge: node ${edge.to} does not exist`);
        if (edge.from === edge.to) throw new Refused('createEdge: edge would connect a node to itself');
        const edges = await liveEdges(tx);
        if (edges.some((e) => e.from === edge.from && e.to === edge.to)) {
          throw new Refused(`createEdge: an edge from ${edge.from} to ${edge.to} already exists`);
        }
        if (edges.length >= lim.maxEdges) throw new Refused('createEdge: canvas has too many edges');
        // from → to closes a cycle exactly when to already reaches from.
        if (reaches(edges, edge.to, edge.from)) throw new Refused('createEdge: edge would close a cycle');
        await tx.set(edgeKey(edge.id), edge);
      });
    },

    async deleteEdge(tx: WriteTransaction, args: IDArgs): Promise<MutationResult> {
      return run(async () => {
        const id = new Decoder('deleteEdge', lim).id('id', fields('deleteEdge', args, ['id'] as const).id);
        if (await tx.has(edgeKey(id))) await tx.del(edgeKey(id));
      });
    },

    async updateCanvas(tx: WriteTransaction, args: UpdateCanvasArgs): Promise<MutationResult> {
      return run(async () => {
        const title = new Decoder('updateCanvas', lim).title(fields('updateCanvas', args, ['title'] as const).title);
        await tx.set(CANVAS_KEY, {id: canvasID, title});
      });
    },
  };
}

/** The mutators of a canvas, as `rep.mutate` sees them. */
export type CanvasMutators = ReturnType<typeof makeMutators>;

/**
 * Would createEdge from → to close a cycle among these edges? For UIs that
 * want to refuse a link before trying it.
 */
export function wouldCycle(edges: readonly Edge[], from: string, to: string): boolean {
  return from === to || reaches(edges, to, from);
}

// The suite's mutators are the client package's (canvas/client), the code
// browsers run: one implementation of the rules, kept equal to the server's
// by canvas/client's differential test. This file adds test tools only.
import {makeMutators as packageMutators, edgeKey} from '../../canvas/client/dist/mutators.js';

export {nodeKey, edgeKey, CANVAS_KEY} from '../../canvas/client/dist/mutators.js';

/**
 * Returns the mutators of one canvas.
 *
 * @param {string} canvasID the canvas id (written into the `canvas` key).
 * @param {{uncheckedCreateEdge?: boolean}} [opts]
 *   uncheckedCreateEdge: createEdge skips every rule and writes the edge
 *   optimistically. Only for tests that need the server to be the one
 *   rejecting an edge.
 */
export function makeMutators(canvasID, opts = {}) {
  const mutators = packageMutators(canvasID);
  if (opts.uncheckedCreateEdge) {
    mutators.createEdge = async (tx, args) => {
      await tx.set(edgeKey(args.id), {id: args.id, from: args.from, to: args.to});
    };
  }
  return mutators;
}

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

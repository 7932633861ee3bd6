// Applies mutation sequences with the package's mutators (dist/mutators.js,
// the same code the browser runs) and prints, for each sequence, which
// mutations the rules let through and the resulting key-value state.
//
//   node test/differential.mjs sequences.json > results.json
//
// Input: {"canvas": {"id","title"}, "limits": {...} | null per sequence,
//         "sequences": [{"limits": {...}|null, "ops": [{"name", "args": "<JSON text>"}]}]}
// Output: [{"applied": [bool...], "state": {key: value}}] in input order.
//
// The transaction is a sorted in-memory map with the semantics of
// Replicache's WriteTransaction that the mutators use (get, has, set, del,
// scan by prefix in key order); values are stored as structured clones, as
// Replicache stores JSON values.
import {readFileSync} from 'node:fs';
import {makeMutators} from '../dist/mutators.js';

class MemTx {
  constructor(map) {
    this.map = map;
  }
  async get(key) {
    return this.map.has(key) ? structuredClone(this.map.get(key)) : undefined;
  }
  async has(key) {
    return this.map.has(key);
  }
  async set(key, value) {
    this.map.set(key, structuredClone(value));
  }
  async del(key) {
    return this.map.delete(key);
  }
  scan({prefix = ''} = {}) {
    const keys = [...this.map.keys()].filter((k) => k.startsWith(prefix)).sort();
    const iter = (pick) => ({
      async toArray() {
        return keys.map(pick);
      },
      async *[Symbol.asyncIterator]() {
        for (const k of keys) yield pick(k);
      },
    });
    return {
      keys: () => iter((k) => k),
      values: () => iter((k) => structuredClone(this.map.get(k))),
      entries: () => iter((k) => [k, structuredClone(this.map.get(k))]),
    };
  }
}

const input = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const results = [];
for (const seq of input.sequences) {
  const map = new Map([['canvas', {id: input.canvas.id, title: input.canvas.title}]]);
  const tx = new MemTx(map);
  const mutators = makeMutators(input.canvas.id, {limits: seq.limits ?? undefined});
  const applied = [];
  for (const op of seq.ops) {
    const m = Object.hasOwn(mutators, op.name) ? mutators[op.name] : undefined;
    if (m === undefined) {
      applied.push(false); // unknown mutator
      continue;
    }
    const res = await m(tx, JSON.parse(op.args));
    applied.push(res.ok);
  }
  const state = Object.fromEntries([...map.keys()].sort().map((k) => [k, map.get(k)]));
  results.push({applied, state});
}
process.stdout.write(JSON.stringify(results));

import {
  CANVAS_KEY,
  edgeKey,
  makeMutators,
  nodeKey,
  wouldCycle
} from "./chunk-2OXAAXFE.js";
export {
  CANVAS_KEY,
  edgeKey,
  makeMutators,
  nodeKey,
  wouldCycle
};

export * from './types.js';
export { makeMutators, wouldCycle, type CanvasMutators, type MutatorOptions } from './mutators.js';
export { connect, CanvasClient, type AuthOption, type ConnectOptions, type Peer, type PresenceState, type StreamState } from './connect.js';
export { Cell, type Subscribable } from './subscribable.js';

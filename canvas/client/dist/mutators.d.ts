import type { WriteTransaction } from 'replicache';
import { type CreateEdgeArgs, type CreateNodeArgs, type Edge, type IDArgs, type Limits, type MoveNodeArgs, type MutationResult, type UpdateCanvasArgs, type UpdateNodeArgs } from './types.js';
export { CANVAS_KEY, edgeKey, nodeKey } from './types.js';
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
export declare function makeMutators(canvasID: string, opts?: MutatorOptions): {
    createNode(tx: WriteTransaction, args: CreateNodeArgs): Promise<MutationResult>;
    updateNode(tx: WriteTransaction, args: UpdateNodeArgs): Promise<MutationResult>;
    moveNode(tx: WriteTransaction, args: MoveNodeArgs): Promise<MutationResult>;
    deleteNode(tx: WriteTransaction, args: IDArgs): Promise<MutationResult>;
    createEdge(tx: WriteTransaction, args: CreateEdgeArgs): Promise<MutationResult>;
    deleteEdge(tx: WriteTransaction, args: IDArgs): Promise<MutationResult>;
    updateCanvas(tx: WriteTransaction, args: UpdateCanvasArgs): Promise<MutationResult>;
};
/** The mutators of a canvas, as `rep.mutate` sees them. */
export type CanvasMutators = ReturnType<typeof makeMutators>;
/**
 * Would createEdge from → to close a cycle among these edges? For UIs that
 * want to refuse a link before trying it.
 */
export declare function wouldCycle(edges: readonly Edge[], from: string, to: string): boolean;

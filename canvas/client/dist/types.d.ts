/** The value under the `canvas` key. */
export type Canvas = {
    readonly id: string;
    readonly title: string;
};
/** The value under `node/<id>`. */
export type Node = {
    readonly id: string;
    readonly kind: string;
    readonly x: number;
    readonly y: number;
    readonly w: number;
    readonly h: number;
    readonly title: string;
    readonly body: string;
};
/** The value under `edge/<id>`: a directed link from one node to another. */
export type Edge = {
    readonly id: string;
    readonly from: string;
    readonly to: string;
};
export declare const CANVAS_KEY = "canvas";
export declare const NODE_PREFIX = "node/";
export declare const EDGE_PREFIX = "edge/";
export declare const nodeKey: (id: string) => string;
export declare const edgeKey: (id: string) => string;
/** The pattern of every id: canvas, node, edge, client. */
export declare const ID_PATTERN: RegExp;
/** The pattern of a node kind. */
export declare const KIND_PATTERN: RegExp;
/** What a mutation may write; the server's defaults unless it was configured otherwise. */
export interface Limits {
    /** characters (code points) in a node or canvas title */
    readonly maxTitle: number;
    /** bytes (UTF-8) in a node body */
    readonly maxBody: number;
    /** |x| and |y| */
    readonly maxCoord: number;
    /** w and h, exclusive lower bound 0 */
    readonly maxSize: number;
    /** live nodes per canvas */
    readonly maxNodes: number;
    /** live edges per canvas */
    readonly maxEdges: number;
}
export declare const DEFAULT_LIMITS: Limits;
/** createNode's defaults, the server's. */
export declare const DEFAULT_W = 200;
export declare const DEFAULT_H = 120;
/** Arguments of the seven mutators. */
export interface CreateNodeArgs {
    id: string;
    kind: string;
    x: number;
    y: number;
    w?: number;
    h?: number;
    title?: string;
    body?: string;
}
export interface UpdateNodeArgs {
    id: string;
    kind?: string;
    x?: number;
    y?: number;
    w?: number;
    h?: number;
    title?: string;
    body?: string;
}
export interface MoveNodeArgs {
    id: string;
    x: number;
    y: number;
}
export interface IDArgs {
    id: string;
}
export interface CreateEdgeArgs {
    id: string;
    from: string;
    to: string;
}
export interface UpdateCanvasArgs {
    title: string;
}
/**
 * What a mutator returns to the caller of `rep.mutate.x(...)`: whether the
 * rules let it through. A refused mutation writes nothing here and is still
 * pushed; the server refuses it for the same reason and acknowledges it.
 */
export type MutationResult = {
    ok: true;
} | {
    ok: false;
    error: string;
};

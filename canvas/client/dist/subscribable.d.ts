/** A value that changes over time: read it, or be told of each new one. */
export interface Subscribable<T> {
    /** The current value. */
    readonly value: T;
    /**
     * Calls fn with the current value at once and with every new one after;
     * returns the function that stops it.
     */
    subscribe(fn: (value: T) => void): () => void;
}
/** A Subscribable whose value is set from inside the package. */
export declare class Cell<T> implements Subscribable<T> {
    #private;
    constructor(value: T, equal?: (a: T, b: T) => boolean);
    get value(): T;
    set(value: T): void;
    subscribe(fn: (value: T) => void): () => void;
}

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
export class Cell<T> implements Subscribable<T> {
  #value: T;
  readonly #subs = new Set<(value: T) => void>();
  readonly #equal: (a: T, b: T) => boolean;

  constructor(value: T, equal: (a: T, b: T) => boolean = Object.is) {
    this.#value = value;
    this.#equal = equal;
  }

  get value(): T {
    return this.#value;
  }

  set(value: T): void {
    if (this.#equal(this.#value, value)) return;
    this.#value = value;
    for (const fn of [...this.#subs]) fn(value);
  }

  subscribe(fn: (value: T) => void): () => void {
    this.#subs.add(fn);
    fn(this.#value);
    return () => {
      this.#subs.delete(fn);
    };
  }
}

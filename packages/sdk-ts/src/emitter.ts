/** A listener of one event type: called with the event's value. */
export type Listener<T> = (event: T) => void;

/**
 * A small typed event emitter that works the same in browsers and Node. `Events` maps each event name to the value
 * its listeners receive. Listeners run synchronously, in the order they were added.
 */
export class Emitter<Events extends { [K in keyof Events]: unknown }> {
  #listeners = new Map<keyof Events, Set<Listener<never>>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    let set = this.#listeners.get(type);
    if (!set) this.#listeners.set(type, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(type, listener);
  }

  /** Adds a listener that runs once. */
  once<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const off = this.on(type, (event) => {
      off();
      listener(event);
    });
    return off;
  }

  /**
   * Removes a listener added with `on` (for one added with `once`, call the function `once` returned). Does nothing
   * when it is not registered.
   */
  off<K extends keyof Events>(type: K, listener: Listener<Events[K]>): void {
    this.#listeners.get(type)?.delete(listener as Listener<never>);
  }

  /** Removes every listener of `type`, or of every type. */
  removeAllListeners(type?: keyof Events): void {
    if (type === undefined) this.#listeners.clear();
    else this.#listeners.delete(type);
  }

  /**
   * Calls every listener of `type`. A listener that throws does not stop the others nor the client: the exception
   * is rethrown asynchronously so that it still reaches the host's unhandled-error reporting.
   */
  protected emit<K extends keyof Events>(type: K, event: Events[K]): void {
    const set = this.#listeners.get(type);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(event);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }
}

/** A small typed listener registry (Node's EventEmitter is not available in browsers). */
export class Emitter<Events extends object> {
  private readonly listeners = new Map<keyof Events, Set<(event: never) => void>>();

  /** Adds a listener; returns a function that removes it. */
  on<K extends keyof Events>(name: K, listener: (event: Events[K]) => void): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Calls every listener; returns whether there was one. A throwing listener does not stop the others. */
  emit<K extends keyof Events>(name: K, event: Events[K]): boolean {
    const set = this.listeners.get(name);
    if (set === undefined || set.size === 0) return false;
    for (const listener of [...set]) {
      try {
        (listener as (event: Events[K]) => void)(event);
      } catch (err) {
        // A listener's bug must not break the connection's state machine; surface it instead.
        queueMicrotask(() => {
          throw err;
        });
      }
    }
    return true;
  }
}

/** A tiny observable value and the hook that re-renders a component when it changes. */
import { useLayoutEffect, useRef, useState } from 'preact/hooks'

/** A value that components and modules can read, set and watch. */
export interface Store<T> {
  get(): T
  set(value: T): void
  subscribe(listener: () => void): () => void
}

/** A store holding `initial`. */
export function createStore<T>(initial: T): Store<T> {
  let value = initial
  const listeners = new Set<() => void>()
  return {
    get: () => value,
    set(next) {
      value = next
      for (const listener of listeners) listener()
    },
    subscribe(listener) {
      listeners.add(listener)
      return () => listeners.delete(listener)
    },
  }
}

/** The store's current value; the component re-renders when it changes. */
export function useStore<T>(store: Store<T>): T {
  const value = store.get()
  const rendered = useRef(value)
  rendered.current = value
  const [, setVersion] = useState(0)
  useLayoutEffect(() => {
    const update = () => setVersion((v) => v + 1)
    const unsubscribe = store.subscribe(update)
    // A change between this render and the subscription would otherwise be missed.
    if (store.get() !== rendered.current) update()
    return unsubscribe
  }, [store])
  return value
}

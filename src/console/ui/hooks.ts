/** Data loading for pages: load once, reload after actions and (throttled) after live events. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks'
import { onTokenChange, problem } from './api'
import { type LiveEvent, onLiveEvent } from './live'

/** A page's data: what was loaded last, the error of the last attempt, and a way to load again. */
export interface Loaded<T> {
  data: T | undefined
  error: string | undefined
  reload: () => void
}

/**
 * Loads with `load` when `key` changes, after a token change, and after live
 * events that `affects` (all by default), at most once per `throttleMs`: the
 * aggregate views (queues, workers, stats) are read again when something changed,
 * never on a timer.
 */
export function useLoad<T>(
  load: () => Promise<T>,
  key: string,
  options: { affects?: (event: LiveEvent) => boolean; throttleMs?: number } = {},
): Loaded<T> {
  const [data, setData] = useState<T>()
  const [error, setError] = useState<string>()
  const latest = useRef(load)
  latest.current = load
  const generation = useRef(0)
  const reload = useCallback(() => {
    const mine = ++generation.current
    latest.current().then(
      (value) => {
        if (mine !== generation.current) return
        setData(value)
        setError(undefined)
      },
      (e: unknown) => mine === generation.current && setError(problem(e)),
    )
  }, [])
  useEffect(() => {
    setData(undefined)
    reload()
    return onTokenChange(reload)
  }, [key, reload])
  const { affects, throttleMs = 1000 } = options
  const affectsRef = useRef(affects)
  affectsRef.current = affects
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined
    let last = 0
    const off = onLiveEvent((event) => {
      if (affectsRef.current && !affectsRef.current(event)) return
      if (timer) return
      const wait = Math.max(0, last + throttleMs - Date.now())
      timer = setTimeout(() => {
        timer = undefined
        last = Date.now()
        reload()
      }, wait)
    })
    return () => {
      off()
      if (timer) clearTimeout(timer)
    }
  }, [reload, throttleMs])
  return { data, error, reload }
}

/** Runs an action, remembering its error and whether it is in flight (to disable its button). */
export function useAction(): {
  busy: boolean
  error: string | undefined
  run: <T>(action: () => Promise<T>) => Promise<T | undefined>
} {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string>()
  const run = useCallback(async <T>(action: () => Promise<T>) => {
    setBusy(true)
    setError(undefined)
    try {
      return await action()
    } catch (e) {
      setError(problem(e))
      return undefined
    } finally {
      setBusy(false)
    }
  }, [])
  return { busy, error, run }
}

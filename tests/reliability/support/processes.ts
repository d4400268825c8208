/**
 * Every child process the suite starts is registered here, so a failing or
 * timed-out test still leaves nothing running: afterAll stops them, and a
 * process `exit` handler kills whatever is left (synchronously, by pid).
 */
/** A free loopback port (a server restarted on it keeps its address). */
export { freePort } from '../../../src/db/embedded'

/** A child this suite started. */
export interface Child {
  pid: number
  /** Resolves with the exit code (or signal-induced code) once the process is gone. */
  exited: Promise<number>
  kill(signal?: NodeJS.Signals | number): void
}

const children = new Set<Child>()

/** Remembers `child` until it exits. */
export function track<T extends Child>(child: T): T {
  children.add(child)
  child.exited.finally(() => children.delete(child))
  return child
}

/** Stoppers of loops running in the test process (workers, producer, canceller, probes). */
const cleanups = new Set<() => void>()

/** Registers `stop` to run at the next killAll (a failed test must not leave loops running). */
export function onCleanup(stop: () => void): void {
  cleanups.add(stop)
}

/**
 * Stops every registered loop, then SIGKILLs every child still running and waits
 * for them (each scenario's afterAll; the exit handler below is the backstop).
 */
export async function killAll(): Promise<void> {
  for (const stop of cleanups) stop()
  cleanups.clear()
  const left = [...children]
  for (const child of left) {
    try {
      child.kill('SIGKILL')
    } catch {}
  }
  await Promise.all(left.map((c) => c.exited.catch(() => 0)))
}

process.on('exit', () => {
  for (const child of children) {
    try {
      process.kill(child.pid, 'SIGKILL')
    } catch {}
  }
})

/** The environment minus anything that would configure Foreman or its database. */
export function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('DATABASE_') || key.startsWith('FOREMAN_')) continue
    env[key] = value
  }
  return { ...env, ...extra }
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Polls `check` every `everyMs` until it answers true or `timeoutMs` passes; answers whether it did. */
export async function waitFor(check: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 200) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      if (await check()) return true
    } catch {}
    if (Date.now() >= deadline) return false
    await sleep(everyMs)
  }
}

/** Reads a child's output line by line into `sink` until it ends. */
export async function drain(stream: ReadableStream<Uint8Array>, sink: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder()
  let buffered = ''
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true })
    const lines = buffered.split('\n')
    buffered = lines.pop() ?? ''
    for (const line of lines) sink(line)
  }
  if (buffered) sink(buffered)
}

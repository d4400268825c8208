/**
 * The slice of the peers' APIs the benchmark uses. The peers live in
 * bench/node_modules (bench/package.json), which a clean clone does not have, and
 * the root `tsc --noEmit` covers bench/: so they are loaded by a specifier tsc does
 * not follow, and typed here by hand (checked against pg-boss 12.38 and
 * graphile-worker 0.18 .d.ts files).
 */

/** Imports a peer from bench/node_modules; run `npm --prefix bench ci` first. */
export async function loadPeer<T>(name: string): Promise<T> {
  const specifier: string = name
  try {
    return (await import(specifier)) as T
  } catch (error) {
    throw new Error(`cannot load ${name} (run \`npm --prefix bench ci\`): ${String(error)}`)
  }
}

// ---- pg-boss 12 ---------------------------------------------------------------
export interface PgBossJob<T = unknown> {
  id: string
  name: string
  data: T
}

export interface PgBoss {
  on(event: 'error', listener: (error: unknown) => void): unknown
  start(): Promise<unknown>
  stop(options?: { graceful?: boolean; timeout?: number; close?: boolean }): Promise<void>
  createQueue(name: string, options?: { notify?: boolean }): Promise<void>
  send(name: string, data?: object | null): Promise<string | null>
  insert(name: string, jobs: { data?: object }[]): Promise<string[] | null>
  fetch<T = unknown>(name: string, options?: { batchSize?: number }): Promise<PgBossJob<T>[]>
  complete(name: string, id: string | string[]): Promise<unknown>
  work<T = unknown>(
    name: string,
    options: {
      batchSize?: number
      localConcurrency?: number
      burstWhenBatchFull?: boolean
      pollingIntervalSeconds?: number
    },
    handler: (jobs: PgBossJob<T>[]) => Promise<unknown>,
  ): Promise<string>
  offWork(name: string, options?: { wait?: boolean }): Promise<void>
}

export interface PgBossModule {
  PgBoss: new (options: { connectionString: string; schema: string; useListenNotify?: boolean }) => PgBoss
}

// ---- graphile-worker 0.18 -----------------------------------------------------
export interface GraphileLogger {
  scope(scope: unknown): GraphileLogger
}

export interface GraphileJob {
  id: string
  payload: unknown
}

export interface GraphileWorkerUtils {
  migrate(): Promise<void>
  addJob(identifier: string, payload?: unknown): Promise<GraphileJob>
  addJobs(specs: { identifier: string; payload: unknown }[]): Promise<readonly GraphileJob[]>
  release(): Promise<void>
}

export interface GraphileRunner {
  stop(reason?: string): Promise<void>
  promise: Promise<void>
}

export interface GraphileOptions {
  connectionString: string
  schema: string
  logger?: GraphileLogger
  concurrency?: number
  noHandleSignals?: boolean
  pollInterval?: number
  taskList?: Record<string, (payload: unknown) => Promise<void> | void>
  preset?: {
    worker?: {
      localQueue?: { size: number }
      completeJobBatchDelay?: number
      failJobBatchDelay?: number
    }
  }
}

export interface GraphileModule {
  Logger: new (factory: (scope: unknown) => (level: string, message: string, meta?: unknown) => void) => GraphileLogger
  makeWorkerUtils(options: Omit<GraphileOptions, 'concurrency' | 'taskList'>): Promise<GraphileWorkerUtils>
  run(options: GraphileOptions): Promise<GraphileRunner>
}

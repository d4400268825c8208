/** Temporary: the run statements moved to src/runs/sql/. */
export * from './sql/claim'
export * from './sql/reads'
export * from './sql/reaper'

/** Temporary: the held-run statements moved to src/runs/sql/. */
export * from './sql/complete-many'
export * from './sql/held'

/**
 * The upgrade to history on 1M finished jobs (`npm run test:history`): the
 * scenario of tests/history-migration.test.ts at full size, with its figures.
 */
import { expect, test } from 'bun:test'
import { historyMigrationScenario } from './migration-scenario'

const FINISHED = Number(process.env.FOREMAN_HISTORY_MIGRATION_JOBS ?? 1_000_000)

test(`${FINISHED.toLocaleString('en')} finished jobs upgrade in place while the API serves, nothing lost`, async () => {
  const figures = await historyMigrationScenario(FINISHED, (line) => console.log(`  ${line}`))
  console.log(JSON.stringify(figures))
  expect(figures.finished).toBe(FINISHED)
}, 1_800_000)

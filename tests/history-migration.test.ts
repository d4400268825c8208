/**
 * The upgrade to history on a populated database, reduced: 20,000 finished jobs
 * (tests/history/migration-scenario.ts; `npm run test:history` runs 1M).
 */
import { expect, test } from 'bun:test'
import { historyMigrationScenario } from './history/migration-scenario'

test('a populated database upgrades in place: keys kept, finished jobs drained to history while the API serves, nothing lost', async () => {
  const figures = await historyMigrationScenario(20_000)
  expect(figures.keys).toBeGreaterThan(0)
}, 120_000)

/**
 * Many instances, reduced: the scale scenario (tests/scale/scenario.ts) at 5,000
 * jobs, so `npm test` runs every check of it. `npm run test:scale` runs 50,000.
 */
import { scaleTest } from './scale/scenario'

await scaleTest(5_000, 60_000)

/**
 * Many instances at full scale (`npm run test:scale`): the scale scenario at
 * 50,000 jobs. Named so that `bun test`'s default globs leave it out of `npm test`,
 * which runs the same scenario at 5,000 (tests/scale.test.ts). Its figures are
 * the README's Sizing section.
 */
import { scaleTest } from './scenario'

await scaleTest(50_000, 600_000)

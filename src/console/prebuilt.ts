/**
 * The console bundle baked into the compiled binary. From source it is null (the
 * bundle is built at the first request); scripts/build.ts replaces this module
 * with the built assets when it compiles `dist/foreman`.
 */
import type { ConsoleAssets } from './model'

/** The baked-in console assets, or null when running from source. */
export const prebuilt: ConsoleAssets | null = null

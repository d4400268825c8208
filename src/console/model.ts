/** What the console's bundler produces and the routes serve. */

/** The built console: its script, its stylesheet, and a hash of both for the asset URLs. */
export interface ConsoleAssets {
  js: string
  css: string
  hash: string
}

import pkg from '../package.json' with { type: 'json' }

/** Foreman's version, as package.json (and the release script) has it. */
export const VERSION: string = pkg.version

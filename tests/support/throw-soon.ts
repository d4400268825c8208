/**
 * Preloaded into a Foreman child (`bun --preload`): an error that no one
 * catches, thrown while the process is still starting.
 */
setTimeout(
  () => {
    throw new Error('injected: an error no one catches')
  },
  Number(process.env.TEST_THROW_AFTER_MS ?? 300),
)

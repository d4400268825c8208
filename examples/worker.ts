/**
 * Handles `send-email` jobs, four at a time, until Ctrl-C (which drains in-flight jobs).
 * Run Foreman (`npm start`), then:
 *   bun examples/worker.ts
 * FOREMAN_URL (default http://localhost:7011) and FOREMAN_TOKEN pick the server.
 */
import { ForemanClient, PermanentError, Worker } from 'foreman/client'

const foreman = new ForemanClient({
  baseUrl: process.env.FOREMAN_URL ?? 'http://localhost:7011',
  token: process.env.FOREMAN_TOKEN,
})

const worker = new Worker(foreman, {
  concurrency: 4,
  leaseSeconds: 30,
  onError: (error, job) => console.error(`worker error${job ? ` on ${job.id}` : ''}:`, error),
})

worker.handle('send-email', async (job, ctx) => {
  const { to, subject } = job.params as { to?: string; subject?: string }
  if (!to?.includes('@')) throw new PermanentError(`not an address: ${to}`) // no point retrying
  const steps = 5
  for (let step = 1; step <= steps; step++) {
    if (ctx.signal.aborted) throw ctx.signal.reason // cancelled, or the worker is stopping
    await new Promise((resolve) => setTimeout(resolve, 300)) // pretend to talk to an SMTP server
    ctx.progress(step, steps, `sending to ${to}`)
  }
  console.log(`sent "${subject}" to ${to} (${job.id}, attempt ${ctx.run.attempt})`)
  return { delivered: true, to }
})

worker.start()
console.log(`${worker.workerId} waiting for send-email jobs on ${foreman.baseUrl}`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    console.log('stopping: finishing in-flight jobs…')
    await worker.stop()
    process.exit(0)
  })
}

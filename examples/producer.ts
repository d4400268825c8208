/**
 * Enqueues a few `send-email` jobs and follows one of them live until it is done.
 * Run Foreman (`npm start`), a worker (`bun examples/worker.ts`), then:
 *   bun examples/producer.ts
 * FOREMAN_URL (default http://localhost:7011) and FOREMAN_TOKEN pick the server.
 */
import { ForemanClient } from 'foreman/client'

const foreman = new ForemanClient({
  baseUrl: process.env.FOREMAN_URL ?? 'http://localhost:7011',
  token: process.env.FOREMAN_TOKEN,
})

console.log((await foreman.ping()).message)

const recipients = ['ada@example.com', 'grace@example.com', 'linus@example.com']
const jobs = []
for (const to of recipients) {
  // The idempotency key makes a re-run of this script enqueue nothing new.
  const { created, job } = await foreman.enqueue({
    kind: 'send-email',
    idempotency_key: `welcome:${to}`,
    params: { to, subject: 'Welcome!' },
    max_attempts: 3,
  })
  console.log(`${created ? 'enqueued' : 'already there'}: ${job.id} (${to}, ${job.status})`)
  jobs.push(job)
}

// Follow the first job until it is terminal (the stream ends by itself then).
const first = jobs[0]!
for await (const event of foreman.events({ jobId: first.id })) {
  if (event.type !== 'job') continue
  const run = event.job.current_run
  const progress = run?.progress_total ? ` ${run.progress_current}/${run.progress_total}` : ''
  console.log(`${first.id}: ${event.job.status}${progress}`)
  if (event.job.status === 'succeeded') console.log('result:', JSON.stringify(event.job.result))
}

/**
 * Readiness says what failed and nothing about where: a 503 body reaches anyone
 * who can reach the port (readyz stays open under bearer auth), so the database
 * host, port and role go to the log only.
 */
import { expect, test } from 'bun:test'
import pino from 'pino'
import { buildApp } from '../src/app'
import { createSql } from '../src/db/client'
import { startFixture } from './support/harness'

const f = await startFixture()

/** A port nothing listens on: bound by us, then released. */
function closedPort(): number {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = listener.port
  listener.stop(true)
  return port
}

test('readyz against an unreachable database is 503 naming the failure, with host, port and role only in the log', async () => {
  const port = closedPort()
  const role = 'readyz_secret_role'
  const sql = createSql({ url: `postgres://${role}:hunter2@127.0.0.1:${port}/foreman_db`, max: 1 })
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  const app = buildApp({ ...f.deps, sql, log })
  try {
    const res = await app.handle(new Request('http://localhost/foreman/readyz'))
    expect(res.status).toBe(503)
    const text = await res.text()
    expect(JSON.parse(text)).toEqual({ status: 'not ready', error: 'database unreachable' })
    for (const secret of ['127.0.0.1', String(port), role, 'hunter2', 'foreman_db']) expect(text).not.toContain(secret)
    await Bun.sleep(20)
    const logged = JSON.stringify(lines.filter((l) => String(l.msg).startsWith('not ready')))
    expect(logged).toContain(String(port))
    expect(logged).not.toContain('hunter2')
  } finally {
    await sql.end({ timeout: 1 })
  }
})

test('readyz with a migration pending says so without listing the files, and logs which', async () => {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  const app = buildApp({ ...f.deps, log, tables: { ...f.tables, migrations: `${f.tables.migrations}_missing` } })
  const res = await app.handle(new Request('http://localhost/foreman/readyz'))
  expect(res.status).toBe(503)
  expect(await res.json()).toEqual({ status: 'not ready', error: 'migrations pending' })
  await Bun.sleep(20)
  expect(JSON.stringify(lines.filter((l) => String(l.msg).startsWith('not ready')))).toContain('001_jobs_and_runs.sql')
})

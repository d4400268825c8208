/**
 * Requests fetch cannot send: framing written byte by byte on a TCP socket.
 * Chunked bodies (tiny chunks, extensions, 20 MB, cut off), oversized bodies with
 * and without the bytes behind them, and Content-Length lies in both directions.
 */
import { connect } from 'node:net'

/** What came back on the socket. */
export interface RawAnswer {
  /** The first response, parsed; null when none arrived. */
  status: number | null
  contentType: string
  text: string
  closed: boolean
  timedOut: boolean
}

/** One raw exchange: bytes to write (with pauses between parts) and how to end. */
export interface RawPlan {
  parts: Uint8Array[]
  pauseMs?: number
  /** Give up after this long without a complete answer. */
  timeoutMs: number
  /** Expect no answer: the server is rightly waiting for bytes the client never sends. */
  expectSilence?: boolean
}

const enc = new TextEncoder()

/** The head of a request; `headers` are full lines without CRLF. */
export function head(method: string, path: string, headers: string[]): Uint8Array {
  return enc.encode(`${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n`)
}

/** `body` framed as chunks of `size` bytes, with the final zero chunk unless `cut`. */
export function chunked(
  body: Uint8Array,
  size: number,
  opts: { extension?: string; cut?: boolean } = {},
): Uint8Array[] {
  const parts: Uint8Array[] = []
  for (let at = 0; at < body.length; at += size) {
    const piece = body.subarray(at, at + size)
    parts.push(enc.encode(`${piece.length.toString(16)}${opts.extension ?? ''}\r\n`), piece, enc.encode('\r\n'))
  }
  if (!opts.cut) parts.push(enc.encode('0\r\n\r\n'))
  return parts
}

/** Parses the first HTTP response in `bytes`; null until it is complete. */
function parseFirst(bytes: Buffer, closed: boolean): Omit<RawAnswer, 'closed' | 'timedOut'> | null {
  const end = bytes.indexOf('\r\n\r\n')
  if (end < 0) return null
  const lines = bytes.subarray(0, end).toString('latin1').split('\r\n')
  const status = Number(lines[0]?.split(' ')[1])
  const headers = new Map(
    lines.slice(1).map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]),
  )
  const rest = bytes.subarray(end + 4)
  const contentType = headers.get('content-type') ?? ''
  if (status === 100) return parseFirst(rest, closed)
  const length = headers.get('content-length')
  if (length !== undefined) {
    if (rest.length < Number(length)) return null
    return { status, contentType, text: rest.subarray(0, Number(length)).toString('utf8') }
  }
  if (headers.get('transfer-encoding')?.includes('chunked')) {
    const chunks: Buffer[] = []
    let at = 0
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at)
      if (lineEnd < 0) return null
      const size = Number.parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16)
      if (size === 0) return { status, contentType, text: Buffer.concat(chunks).toString('utf8') }
      if (rest.length < lineEnd + 2 + size) return null
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size))
      at = lineEnd + 2 + size + 2
    }
  }
  // Neither length nor chunked: the body runs to the close.
  return closed
    ? { status, contentType, text: rest.toString('utf8') }
    : status === 204 || status === 304
      ? { status, contentType, text: '' }
      : null
}

/** Writes the plan's parts (respecting backpressure) and reads the first answer. */
export function exchange(port: number, plan: RawPlan): Promise<RawAnswer> {
  return new Promise((resolveAnswer) => {
    const socket = connect({ host: '127.0.0.1', port })
    const received: Buffer[] = []
    let settled = false
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      const parsed = parseFirst(Buffer.concat(received), true)
      resolveAnswer({ status: null, contentType: '', text: '', ...parsed, closed, timedOut })
    }
    const timer = setTimeout(() => finish(false, true), plan.timeoutMs)
    socket.on('data', (data: Buffer) => {
      received.push(data)
      if (parseFirst(Buffer.concat(received), false)) finish(false, false)
    })
    socket.on('close', () => finish(true, false))
    socket.on('error', () => finish(true, false))
    socket.on('connect', async () => {
      for (const part of plan.parts) {
        if (settled) return
        // write() answers false when the kernel buffer is full: wait for it to drain.
        if (!socket.write(part)) await new Promise((r) => socket.once('drain', r))
        if (plan.pauseMs) await Bun.sleep(plan.pauseMs)
      }
    })
  })
}

/**
 * Gathers items added one at a time and sends them together: a batch goes when
 * `maxItems` are queued or `delayMs` after its first item, whichever comes first.
 * Each add() resolves with its own item's answer (the send answers in input order)
 * or rejects with the error of the whole send.
 */
export class Batcher<I, R> {
  private queue: { item: I; resolve: (r: R) => void; reject: (e: unknown) => void }[] = []
  private timer: ReturnType<typeof setTimeout> | undefined

  constructor(
    private readonly send: (items: I[]) => Promise<R[]>,
    private readonly maxItems: number,
    private readonly delayMs = 5,
  ) {}

  /** Queues `item`; resolves with its answer once its batch is sent. */
  add(item: I): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.queue.push({ item, resolve, reject })
      if (this.queue.length >= this.maxItems) this.flush()
      else this.timer ??= setTimeout(() => this.flush(), this.delayMs)
    })
  }

  /** Sends what is queued now (at most `maxItems`; the rest waits for the next batch). */
  flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.queue.splice(0, this.maxItems)
    if (this.queue.length > 0) this.timer = setTimeout(() => this.flush(), this.delayMs)
    if (batch.length === 0) return
    this.send(batch.map((b) => b.item)).then(
      (answers) => {
        batch.forEach((b, i) => {
          const answer = answers[i]
          if (answer === undefined) b.reject(new Error('batch answer is missing an item'))
          else b.resolve(answer)
        })
      },
      (error: unknown) => {
        for (const b of batch) b.reject(error)
      },
    )
  }
}

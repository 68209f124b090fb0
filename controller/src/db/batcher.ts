/**
 * Coalesces concurrent calls into one flush per event-loop turn (or per `maxItems`), so many
 * agents' small writes become one statement; each caller still awaits its own completion.
 */
export class Batcher<T> {
  private pending: { item: T; resolve: () => void; reject: (err: unknown) => void }[] = []
  private scheduled = false

  constructor(
    private readonly flush: (items: T[]) => Promise<void>,
    private readonly maxItems = 500,
  ) {}

  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ item, resolve, reject })
      if (this.pending.length >= this.maxItems) this.run()
      else if (!this.scheduled) {
        this.scheduled = true
        setImmediate(() => this.run())
      }
    })
  }

  private run(): void {
    this.scheduled = false
    const batch = this.pending
    this.pending = []
    if (batch.length === 0) return
    this.flush(batch.map((b) => b.item)).then(
      () => batch.forEach((b) => b.resolve()),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    )
  }
}

import { abortedError } from './errors.ts'
import type { HandshakeGate } from './connect.ts'

/** Counts handshakes in progress and queues the ones over the limit (first come, first served). */
export class HandshakeLimiter implements HandshakeGate {
  active = 0
  peak = 0
  started = 0
  retries = 0
  private queue: (() => void)[] = []
  constructor(private readonly limit: number) {}

  get queued(): number {
    return this.queue.length
  }

  acquire(signal?: AbortSignal): Promise<() => void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortedError(signal))
      const onAbort = () => {
        this.queue = this.queue.filter((g) => g !== grant)
        reject(abortedError(signal!))
      }
      const grant = () => {
        signal?.removeEventListener('abort', onAbort)
        this.active++
        this.started++
        this.peak = Math.max(this.peak, this.active)
        let released = false
        resolve(() => {
          if (released) return
          released = true
          this.active--
          this.next()
        })
      }
      if (this.active < this.limit && this.queue.length === 0) return grant()
      this.queue.push(grant)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  retried(): void {
    this.retries++
  }

  private next(): void {
    while (this.active < this.limit && this.queue.length > 0) this.queue.shift()!()
  }
}

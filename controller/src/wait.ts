/*
 * Bounded waits: a stop or a check that depends on a peer (the database) must not wait forever
 * when that peer vanished mid-conversation.
 */

/** Resolves true when `p` settles within `ms`, false when the time is up first; never rejects. */
export function settledWithin(ms: number, p: Promise<unknown> | undefined): Promise<boolean> {
  if (!p) return Promise.resolve(true)
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))
  return Promise.race([p.then(() => true, () => true), late]).finally(() => clearTimeout(timer))
}

/** `p`'s result, or a rejection naming `what` when it has not answered within `ms`. */
export function answerWithin<T>(ms: number, p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms)))
  return Promise.race([p, late]).finally(() => clearTimeout(timer))
}

/**
 * Runs `work` one pass at a time: a request while a pass runs makes exactly one more pass after
 * it (a claim loop woken by many notifications does one extra pass, not one per notification).
 */
export class CoalescedLoop {
  private running: Promise<void> | undefined
  private again = false

  constructor(
    private readonly work: () => Promise<void>,
    private readonly onError: (err: unknown) => void,
    private readonly stopped: () => boolean,
  ) {}

  /** The pass in progress, if any (what a stop waits for). */
  get current(): Promise<void> | undefined {
    return this.running
  }

  request(): void {
    if (this.stopped()) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = (async () => {
      do {
        this.again = false
        try {
          await this.work()
        } catch (err) {
          this.onError(err)
        }
      } while (this.again && !this.stopped())
    })().finally(() => (this.running = undefined))
  }
}

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

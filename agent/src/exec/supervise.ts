import { GroupTerminator } from './process-tree.ts'

/** A started process, however it was spawned (pipes or pty). */
export interface SpawnedChild {
  pid: number
  /** Settles when the leader exits; exitCode is absent when a signal ended it. */
  exited: Promise<{ exitCode?: number; signal?: string }>
  /** Settles once every output stream has ended (all writers, grandchildren included, closed it). */
  outputClosed: Promise<void>
  /** Stops reading output that something outside our reach (a setsid daemon) still holds open. */
  closeOutput(): void
}

export interface Supervision {
  /** 0 means none. */
  timeoutMs: number
  signal: AbortSignal
  graceMs: number
}

export interface SupervisedEnd {
  exitCode?: number
  signal?: string
  timedOut: boolean
  interrupted: boolean
}

// The run lasts as long as its leader. Once the leader exits, background processes that still
// hold the output open get LINGER_MS to finish writing; then the whole group is ended (SIGTERM,
// SIGKILL after the grace period), so `sleep 1000 &` can neither keep the run open nor outlive it.
const LINGER_MS = 1000
/** After the group is gone, how long to wait for the output to drain before closing it. */
const DRAIN_MS = 500
/** setTimeout fires at once for delays past 2^31-1 ms (about 24.8 days). */
const MAX_TIMER_MS = 2 ** 31 - 1

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** Applies timeout and cancellation to a started child and waits until it and its group are gone. */
export async function supervise(child: SpawnedChild, s: Supervision): Promise<SupervisedEnd> {
  const group = new GroupTerminator(child.pid, s.graceMs)
  let timedOut = false
  let interrupted = false
  let leaderExited = false
  const stop = (why: 'timeout' | 'cancel') => {
    if (leaderExited || timedOut || interrupted) return
    if (why === 'timeout') timedOut = true
    else interrupted = true
    void group.terminate()
  }
  const onAbort = () => stop('cancel')
  s.signal.addEventListener('abort', onAbort, { once: true })
  if (s.signal.aborted) onAbort()
  const timer = s.timeoutMs > 0 ? setTimeout(() => stop('timeout'), Math.min(s.timeoutMs, MAX_TIMER_MS)) : undefined
  try {
    const end = await child.exited
    leaderExited = true
    clearTimeout(timer)
    await Promise.race([child.outputClosed, delay(LINGER_MS)])
    await group.terminate()
    await Promise.race([child.outputClosed, delay(DRAIN_MS)])
    child.closeOutput()
    return { ...end, timedOut, interrupted }
  } finally {
    clearTimeout(timer)
    s.signal.removeEventListener('abort', onAbort)
  }
}

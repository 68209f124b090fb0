import type { AssignmentStatus } from './assignments.sql.ts'

/** What happens to an assignment, as the job engine sees it. */
export type AssignmentEvent =
  | { type: 'status'; status: AssignmentStatus; at: Date }
  | { type: 'output'; stream: OutputStreamName; seq: number; byteOffset: number; data: Buffer; droppedBytes: number }
  | { type: 'finished'; outcome: AssignmentOutcome }

export type OutputStreamName = 'stdout' | 'stderr' | 'pty' | 'file'
export const STREAM_NAMES: Record<number, OutputStreamName> = { 1: 'stdout', 2: 'stderr', 3: 'pty', 4: 'file' }

export interface AssignmentOutcome {
  assignmentId: string
  status: AssignmentStatus
  exitCode: number | null
  signal: string | null
  error: string | null
  rejectReason: string | null
  startedAt: Date | null
  finishedAt: Date | null
  outputBytes: number
  truncated: boolean
  fileSha256: string | null
  fileSize: number | null
}

type Listener = (event: AssignmentEvent) => void

/** In-process fan-out of assignment events; the database stays the record. */
export class AssignmentEvents {
  private readonly listeners = new Map<string, Set<Listener>>()

  watch(assignmentId: string, listener: Listener): () => void {
    let set = this.listeners.get(assignmentId)
    if (!set) this.listeners.set(assignmentId, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0) this.listeners.delete(assignmentId)
    }
  }

  /** The assignments someone is waiting on. */
  watched(): string[] {
    return [...this.listeners.keys()]
  }

  emit(assignmentId: string, event: AssignmentEvent): void {
    for (const listener of this.listeners.get(assignmentId) ?? []) listener(event)
  }

  /** The events of one assignment as an async iterable that ends after `finished`. */
  stream(assignmentId: string): AsyncIterable<AssignmentEvent> {
    const queue: AssignmentEvent[] = []
    let wake: (() => void) | undefined
    let done = false
    const unwatch = this.watch(assignmentId, (event) => {
      queue.push(event)
      if (event.type === 'finished') {
        done = true
        unwatch()
      }
      wake?.()
    })
    return {
      [Symbol.asyncIterator]: () => ({
        next: async (): Promise<IteratorResult<AssignmentEvent>> => {
          while (queue.length === 0) {
            if (done) return { done: true, value: undefined }
            await new Promise<void>((resolve) => (wake = resolve))
            wake = undefined
          }
          return { done: false, value: queue.shift()! }
        },
        return: async () => {
          unwatch()
          done = true
          return { done: true, value: undefined }
        },
      }),
    }
  }
}

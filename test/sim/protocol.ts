// Types shared by the simulator's parent (Fleet) and its worker processes, and the cheap-action vocabulary.

/** One virtual agent's enrolled identity: what an agent's state dir would hold. */
export interface SimIdentity {
  id: string
  /** The 32-byte Ed25519 identity seed, base64; its public half is in the agent row. */
  seed: string
  /** The X25519 secret key for sealed secrets, base64 (needed only to open secrets in 'real' mode). */
  box?: string
  /** Position in the fleet (0…count-1): the simulator's per-agent randomness is derived from it, not from the id. */
  index: number
}

export interface Behaviour {
  /** 'cheap': nothing is spawned, see CHEAP ACTIONS below; 'real': the real agent runner (journal, spool, processes). */
  mode: 'cheap' | 'real'
  /** Cheap mode: each action takes a uniform random time in [min, max] ms before its result (on top of `sleep`). */
  latencyMs: [number, number]
  /** Cheap mode: when set, a command that is not one of the cheap actions emits this many bytes instead of echoing itself. */
  outputBytes?: number | undefined
  /** Cheap mode: probability that an action ends with exit code 1 (after its output). */
  failureRate: number
  /** Seeds latency and failure draws: the same seed, agent index and assignment order give the same outcomes. */
  seed: number
  /** Cheap mode: at most this many output chunks unacked per assignment (the real agent's spool bound, simplified). */
  window: number
}

export const DEFAULT_BEHAVIOUR: Behaviour = { mode: 'cheap', latencyMs: [0, 0], failureRate: 0, seed: 1, window: 64 }

/**
 * CHEAP ACTIONS (cheap mode), from an exec's argv joined by spaces or its script text:
 *   echo TEXT          → TEXT + "\n" on stdout
 *   sleep S            → nothing, S seconds (fractions allowed) before the result
 *   emit K             → K printable bytes on stdout, in CHUNK_BYTES chunks
 *   STREAM_COMMAND K W → K random (incompressible) bytes, at most W chunks unacked (the agents bench)
 *   STAMPED_COMMAND K S I → K printable bytes in S-byte chunks, one every I ms (0: as acks allow), each
 *                      starting with its send time (see stampOf): live-output latency (the output bench)
 *   anything else      → `outputBytes` bytes when configured, else the command text + "\n"
 * Exit code 0, or 1 for the draws that fail.
 */
export const STREAM_COMMAND = 'opsc-bench-stream'
export const CHUNK_BYTES = 32 * 1024
export const STAMPED_COMMAND = 'opsc-bench-stamped'

/** A STAMPED_COMMAND chunk's header: the sender's Date.now() in decimal and a newline. */
export const stampHeader = (now = Date.now()) => `${now}\n`
/** The send time at the start of a STAMPED_COMMAND chunk (undefined when it has none). */
export function stampOf(chunk: Buffer): number | undefined {
  const m = /^(\d{13})\n/.exec(chunk.subarray(0, 14).toString('latin1'))
  return m ? Number(m[1]) : undefined
}

export interface SimStats {
  /** Virtual agents in the fleet (enrolled or given). */
  agents: number
  /** Agents with a live session now. */
  connected: number
  /** SessionReady received, summed over agents (a reconnect counts again). */
  sessions: number
  /** Sessions that ended before or after SessionReady (refused, timed out, dropped) and were retried. */
  retries: number
  received: number
  verified: number
  rejected: number
  /** Assignments that ran to a result (succeeded + failed). */
  executed: number
  succeeded: number
  failed: number
  /** Output chunks and their data bytes sent (each (assignment, seq) counted once). */
  chunksSent: number
  bytesSent: number
  /** Agents killed with kill(), and the TCP connections destroyed doing it. */
  killed: number
  socketsDropped: number
}

export const emptyStats = (): SimStats => ({
  agents: 0,
  connected: 0,
  sessions: 0,
  retries: 0,
  received: 0,
  verified: 0,
  rejected: 0,
  executed: 0,
  succeeded: 0,
  failed: 0,
  chunksSent: 0,
  bytesSent: 0,
  killed: 0,
  socketsDropped: 0,
})

export function addStats(a: SimStats, b: SimStats): SimStats {
  const out = { ...a }
  for (const k of Object.keys(out) as (keyof SimStats)[]) out[k] += b[k]
  return out
}

export interface WorkerStart {
  controllers: string[]
  caPem: string
  behaviour: Behaviour
  /** Handshakes (and enrolments) in flight at once in this worker. */
  concurrency: number
  /** Seeded identities, or enrolment of `indices.length` new agents with the token. */
  identities?: SimIdentity[]
  enroll?: { token: string; namePrefix: string; indices: number[] }
  backoffBaseMs?: number
  backoffCapMs?: number
  /** Write the agents' own JSON log lines (warn and up) to stderr. */
  verbose?: boolean
}

export type ToWorker =
  | { type: 'start'; reqId: number; start: WorkerStart }
  | { type: 'connect'; reqId: number }
  | { type: 'stats'; reqId: number }
  | { type: 'kill'; reqId: number; count: number }
  | { type: 'stop'; reqId: number }

export interface ReadyReport {
  ready: number
  retries: number
  lastProblem?: string
}

export type FromWorker =
  | { type: 'loaded' }
  | { type: 'progress'; ready: number }
  | { type: 'reply'; reqId: number; ok: true; value?: unknown }
  | { type: 'reply'; reqId: number; ok: false; message: string }

// Messages between the agents bench (parent, which runs the controller) and its simulated-agent workers.

export interface AgentIdentity {
  id: string
  /** The 32-byte Ed25519 identity seed, base64; its public half is in the agent row. */
  seed: string
}

export type ToWorker = { type: 'connect'; address: string; caPem: string; agents: AgentIdentity[]; concurrency: number }

export type FromWorker =
  | { type: 'loaded' }
  | { type: 'progress'; ready: number }
  /** Every agent of the worker has a live session; `retries` counts sessions that ended before SessionReady. */
  | { type: 'connected'; ready: number; retries: number; lastProblem?: string }
  | { type: 'failed'; message: string }

/**
 * An exec argv `[STREAM_COMMAND, bytes, window]` makes a simulated agent stream `bytes` of output in
 * 32 KiB chunks with at most `window` chunks unacked, instead of echoing.
 */
export const STREAM_COMMAND = 'opsc-bench-stream'
export const CHUNK_BYTES = 32 * 1024

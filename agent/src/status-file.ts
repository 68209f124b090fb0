// The running agent's live state, published in the state dir so `opsconductor-agent status` can answer without
// talking to the controller (or to the agent: it never listens).
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import type { Logger } from 'pino'
import { z } from 'zod'
import { VERSION } from '../../proto/src/product-version.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import type { SpoolUsage } from './spool.ts'
import { STATE_PATHS } from './state.ts'

/** Rewritten this often even when nothing changes, so a reader can tell a live agent from a hung one. */
export const STATUS_REFRESH_MS = 10_000
/** Older than three refreshes: the process behind the pid is not updating it (hung, or the pid was reused). */
export const STATUS_STALE_MS = 3 * STATUS_REFRESH_MS

export const AgentStatusFile = z.object({
  pid: z.number().int().positive(),
  /** `stopped` and `refused` are written last, by an agent that is exiting. */
  state: z.enum(['connecting', 'connected', 'stopped', 'refused']),
  connected: z.boolean(),
  /** The controller of the live session, or the one last tried. */
  controller: z.string().nullable(),
  /** When `connected` last changed (or the agent started). */
  since: z.iso.datetime(),
  last_error: z.string().nullable(),
  version: z.string(),
  protocol: z.string(),
  started_at: z.iso.datetime(),
  updated_at: z.iso.datetime(),
  spool: z.object({ bytes: z.number(), segments: z.number(), entries: z.number() }),
})
export type AgentStatusFile = z.infer<typeof AgentStatusFile>

const fileIn = (dir: string) => path.join(dir, STATE_PATHS.status)

/** Write to a temp file and rename: a reader sees the old or the new status, never half of one. */
export function writeStatusFile(dir: string, status: AgentStatusFile): void {
  const file = fileIn(dir)
  const tmp = `${file}.${process.pid}.tmp`
  try {
    writeFileSync(tmp, JSON.stringify(status, null, 2) + '\n', { mode: 0o644 })
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
}

/** The last published status; undefined when there is none or it cannot be used. */
export function readStatusFile(dir: string): AgentStatusFile | undefined {
  let raw: string
  try {
    raw = readFileSync(fileIn(dir), 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
  try {
    return AgentStatusFile.parse(JSON.parse(raw))
  } catch {
    return undefined
  }
}

/** Signal 0 checks existence only; EPERM means it exists under another user. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

type Change = Partial<Pick<AgentStatusFile, 'state' | 'controller' | 'last_error'>>

/** Keeps status.json current for the run loop. A failed write is logged, never fatal: the agent's work matters more. */
export class StatusPublisher {
  #status: AgentStatusFile
  #timer: NodeJS.Timeout | undefined
  #writeFailed = false

  constructor(
    private readonly dir: string,
    private readonly spool: () => SpoolUsage,
    private readonly log: Logger,
    private readonly now = () => new Date(),
  ) {
    const at = now().toISOString()
    const { major, minor } = PROTOCOL_VERSION
    this.#status = { pid: process.pid, state: 'connecting', connected: false, controller: null, since: at, last_error: null, version: VERSION, protocol: `${major}.${minor}`, started_at: at, updated_at: at, spool: spool() }
  }

  start(): void {
    this.#write()
    this.#timer = setInterval(() => this.#write(), STATUS_REFRESH_MS)
    this.#timer.unref()
  }

  update(change: Change): void {
    const next = { ...this.#status, ...change }
    next.connected = next.state === 'connected'
    if (next.connected !== this.#status.connected) next.since = this.now().toISOString()
    this.#status = next
    this.#write()
  }

  /** The last word of an exiting agent. */
  stop(state: 'stopped' | 'refused', lastError?: string): void {
    clearInterval(this.#timer)
    this.update({ state, ...(lastError === undefined ? {} : { last_error: lastError }) })
  }

  #write(): void {
    const { bytes, segments, entries } = this.spool()
    this.#status = { ...this.#status, updated_at: this.now().toISOString(), spool: { bytes, segments, entries } }
    try {
      writeStatusFile(this.dir, this.#status)
      this.#writeFailed = false
    } catch (err) {
      if (!this.#writeFailed) this.log.warn({ err: (err as Error).message }, 'agent.status_write_failed')
      this.#writeFailed = true
    }
  }
}

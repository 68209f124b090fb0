import type { Readable } from 'node:stream'
import { createInterface } from 'node:readline'

export type LogRecord = Record<string, unknown> & { msg?: string }

/** Keeps a process's JSON log lines and lets a test wait for one (set OPSC_TEST_AGENT_LOG to echo them). */
export class JsonLogWatcher {
  readonly logs: LogRecord[] = []
  private waiters: { match: (r: LogRecord) => boolean; resolve: (r: LogRecord) => void }[] = []

  constructor(
    stream: Readable,
    private readonly label: string,
    private readonly exited?: Promise<number | null>,
  ) {
    createInterface({ input: stream }).on('line', (line) => {
      let record: LogRecord
      try {
        record = JSON.parse(line) as LogRecord
      } catch {
        record = { msg: 'raw', line }
      }
      this.logs.push(record)
      if (process.env.OPSC_TEST_AGENT_LOG) process.stderr.write(`[${label}] ${line}\n`)
      this.waiters = this.waiters.filter((w) => (w.match(record) ? (w.resolve(record), false) : true))
    })
  }

  /** The first record (already seen or future) with this msg and these field values. */
  waitFor(msg: string, fields: Record<string, unknown> = {}, timeoutMs = 60_000): Promise<LogRecord> {
    const match = (r: LogRecord) => r.msg === msg && Object.entries(fields).every(([k, v]) => r[k] === v)
    const seen = this.logs.find(match)
    return seen ? Promise.resolve(seen) : this.wait(match, msg, timeoutMs)
  }

  /** The next record with this msg logged after now. */
  waitForNext(msg: string, timeoutMs = 60_000): Promise<LogRecord> {
    return this.wait((r) => r.msg === msg, msg, timeoutMs)
  }

  private wait(match: (r: LogRecord) => boolean, msg: string, timeoutMs: number): Promise<LogRecord> {
    return new Promise((resolve, reject) => {
      const fail = (why: string) => reject(new Error(`${this.label} ${why} before logging ${msg}; last lines: ${JSON.stringify(this.logs.slice(-5))}`))
      const timer = setTimeout(() => fail(`took over ${timeoutMs} ms`), timeoutMs)
      this.waiters.push({ match, resolve: (r) => (clearTimeout(timer), resolve(r)) })
      void this.exited?.then((code) => (clearTimeout(timer), fail(`exited (${code})`)))
    })
  }
}

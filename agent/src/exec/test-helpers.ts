// Shared by the exec tests: building actions and collecting output.
import { create, type MessageInitShape } from '@bufbuild/protobuf'
import { readFileSync } from 'node:fs'
import { ExecActionSchema, Shell, type ExecAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { OutputStreamName, RunOptions } from './exec.ts'

type ActionInit = Exclude<MessageInitShape<typeof ExecActionSchema>, ExecAction>

export function bash(script: string, init: ActionInit = {}, args: string[] = []): ExecAction {
  return create(ExecActionSchema, { ...init, command: { case: 'script', value: { shell: Shell.BASH, script, args } } })
}

export function argv(words: string[], init: ActionInit = {}): ExecAction {
  return create(ExecActionSchema, { ...init, command: { case: 'argv', value: { argv: words } } })
}

/** Collects output per stream and lets a test wait until some text has arrived. */
export function collector(extra: Partial<RunOptions> = {}) {
  const chunks: { stream: OutputStreamName; data: Buffer }[] = []
  const waiters: { stream: OutputStreamName; pattern: RegExp; resolve: () => void }[] = []
  const controller = new AbortController()
  const bytes = (stream: OutputStreamName) => Buffer.concat(chunks.filter((c) => c.stream === stream).map((c) => c.data))
  const text = (stream: OutputStreamName) => bytes(stream).toString('utf8')
  const opts: RunOptions = {
    signal: controller.signal,
    onOutput(stream, data) {
      chunks.push({ stream, data })
      for (const w of waiters.filter((w) => w.stream === stream && w.pattern.test(text(stream)))) {
        waiters.splice(waiters.indexOf(w), 1)
        w.resolve()
      }
    },
    ...extra,
  }
  return {
    opts,
    controller,
    chunks,
    bytes,
    text,
    /** Settles once the stream's text matches; there is no timer, the test's own timeout bounds it. */
    waitFor(stream: OutputStreamName, pattern: RegExp): Promise<void> {
      if (pattern.test(text(stream))) return Promise.resolve()
      return new Promise((resolve) => waiters.push({ stream, pattern, resolve }))
    },
  }
}

/**
 * Whether a process is gone. A zombie counts as gone: it has exited and only waits for its
 * new parent to reap it, which an init that reaps lazily (as in some sandboxes) does late.
 */
export function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true
    throw err
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

export function pidsIn(text: string): number[] {
  return [...text.matchAll(/pid=(\d+)/g)].map((m) => Number(m[1]))
}

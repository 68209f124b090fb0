import { constants } from 'node:os'
import { spawn as spawnTerminal, type IPty } from 'node-pty'
import type { Pty } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import type { SpawnSpec } from './piped.ts'
import type { SpawnedChild } from './supervise.ts'

const DEFAULT_COLS = 80
const DEFAULT_ROWS = 24
const DEFAULT_TERM = 'xterm-256color'
const EOT = 0x04

// First name wins, so 6 reads SIGABRT rather than its alias SIGIOT.
const SIGNAL_NAMES = new Map<number, string>()
for (const [name, n] of Object.entries(constants.signals)) if (!SIGNAL_NAMES.has(n)) SIGNAL_NAMES.set(n, name)

/**
 * Spawns on a pseudo-terminal: stdout and stderr merge into one 'pty' stream with the escape
 * sequences left as they are. The pty's process is a session leader, so its pid is also its
 * process group and process-tree.ts can end it like a piped one.
 */
export function spawnPty(spec: SpawnSpec, pty: Pty): SpawnedChild | { error: string } {
  let term: IPty
  try {
    term = spawnTerminal(spec.file, spec.args, {
      name: pty.term || DEFAULT_TERM,
      cols: pty.size?.columns || DEFAULT_COLS,
      rows: pty.size?.rows || DEFAULT_ROWS,
      cwd: spec.cwd,
      env: spec.env,
      // null: hand over raw bytes; node-pty would otherwise decode them as UTF-8.
      encoding: null,
      ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
      ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
    })
  } catch (err) {
    return { error: `cannot start ${spec.file} on a pty: ${(err as Error).message}` }
  }
  // node-pty rethrows a read error other than EIO when nobody else listens for it; such an
  // error only ends the output, and the exit is still reported.
  ;(term as unknown as { on(event: 'error', listener: () => void): void }).on('error', () => {})
  // With encoding null node-pty passes Buffers, though its typings say string.
  term.onData((data: string | Buffer) => spec.onOutput('pty', typeof data === 'string' ? Buffer.from(data) : data))
  // A terminal cannot be closed for input without hanging up; EOF is the terminal's way to end
  // it. Two EOTs when the input ends mid-line: the first only flushes that line to the reader.
  const stdin = Buffer.from(spec.stdin)
  const ends = stdin.length === 0 || stdin[stdin.length - 1] === 0x0a ? [EOT] : [EOT, EOT]
  term.write(Buffer.concat([stdin, Buffer.from(ends)]))
  // node-pty reports exit only after its read side closed (or 200 ms later), so all output
  // before that has been delivered by the time `exited` settles.
  const exited = new Promise<{ exitCode?: number; signal?: string }>((resolve) => {
    term.onExit(({ exitCode, signal }) => {
      if (signal) resolve({ signal: SIGNAL_NAMES.get(signal) ?? `SIG${signal}` })
      else resolve({ exitCode })
    })
  })
  return {
    pid: term.pid,
    exited,
    outputClosed: exited.then(() => {}),
    closeOutput() {},
  }
}

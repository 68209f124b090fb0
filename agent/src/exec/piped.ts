import { once } from 'node:events'
import { execa } from 'execa'
import type { OutputStreamName } from './exec.ts'
import type { SpawnedChild } from './supervise.ts'

export interface SpawnSpec {
  file: string
  args: string[]
  windowsVerbatimArguments?: boolean
  cwd: string
  env: Record<string, string>
  stdin: Uint8Array
  uid?: number
  gid?: number
  onOutput(stream: OutputStreamName, data: Buffer): void
}

/** Spawns with separate stdout/stderr pipes; resolves once the process started, or with why it did not. */
export async function spawnPiped(spec: SpawnSpec): Promise<SpawnedChild | { error: string }> {
  const subprocess = execa(spec.file, spec.args, {
    cwd: spec.cwd,
    env: spec.env,
    extendEnv: false,
    ...(spec.stdin.length > 0 ? { input: spec.stdin } : { stdin: 'ignore' as const }),
    stdout: 'pipe',
    stderr: 'pipe',
    // Output is forwarded chunk by chunk as raw bytes; nothing is collected, decoded or trimmed.
    buffer: false,
    encoding: 'buffer',
    stripFinalNewline: false,
    reject: false,
    // Own process group on POSIX, so a timeout or cancel reaches the grandchildren (process-tree.ts).
    detached: process.platform !== 'win32',
    // Killing is supervise.ts's job, with the group; execa's own kill would reach only the leader.
    forceKillAfterDelay: false,
    windowsHide: true,
    windowsVerbatimArguments: spec.windowsVerbatimArguments ?? false,
    ...(spec.uid !== undefined ? { uid: spec.uid } : {}),
    ...(spec.gid !== undefined ? { gid: spec.gid } : {}),
  })
  // execa settles its promise only after the output ends; here it serves only to report spawn failures.
  const settled = subprocess.then((r) => r)
  const started = await Promise.race([once(subprocess, 'spawn').then(() => true, () => false), settled.then(() => false)])
  if (!started) {
    const result = await settled
    return { error: `cannot start ${spec.file}: ${result.originalMessage || result.shortMessage}` }
  }
  const { stdout, stderr } = subprocess
  stdout.on('data', (d: Buffer) => spec.onOutput('stdout', d))
  stderr.on('data', (d: Buffer) => spec.onOutput('stderr', d))
  return {
    pid: subprocess.pid!,
    exited: new Promise((resolve) => {
      subprocess.once('exit', (code, signal) => resolve(signal ? { signal } : { exitCode: code ?? undefined }))
    }),
    outputClosed: Promise.all([once(stdout, 'close'), once(stderr, 'close')]).then(() => {}),
    closeOutput() {
      stdout.destroy()
      stderr.destroy()
    },
  }
}

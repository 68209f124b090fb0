import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

export interface Ran {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion (no shell); output as text. */
export function sh(file: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Ran {
  const r = spawnSync(file, args, { encoding: 'utf8', cwd: opts.cwd, env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 300_000, maxBuffer: 64 * 2 ** 20 })
  if (r.error) throw r.error
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** sh() without blocking the event loop: for commands that talk to an in-process controller. */
export function run(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const proc = spawn(file, args, { env: opts.env ?? process.env })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d) => (stdout += d))
    proc.stderr.on('data', (d) => (stderr += d))
    proc.on('error', reject)
    proc.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

export function has(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0
}

export const isRoot = process.getuid?.() === 0

const made: string[] = []

/** A fresh temp dir, removed by removeTempDirs() (bundles hold a 90 MB Node binary each). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `opsc-${prefix}-`))
  made.push(dir)
  return dir
}

export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true })
}

/** The environment a systemd system service gets (no inherited OPSC_* or npm settings). */
export const SERVICE_ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' }

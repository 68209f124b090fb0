import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { z } from 'zod'
import { caFingerprint } from './pin.ts'

/** Where the agent keeps its identity: fixed per platform, overridable with --state-dir. */
export function defaultStateDir(platform = process.platform, env = process.env): string {
  if (platform === 'win32') return path.join(env.ProgramData ?? 'C:\\ProgramData', 'OpsConductor', 'Agent')
  return '/var/lib/opsconductor-agent'
}

export const AgentIdentity = z.object({
  agent_id: z.uuid(),
  /** `host:port` of each controller's gRPC listener: one, or every controller of a multi-controller deployment. */
  controllers: z.array(z.string().min(1)).min(1),
  installation_id: z.string(),
  enrolled_at: z.iso.datetime(),
  signing_keys: z.array(z.object({ key_id: z.string().min(1), public_key: z.string().min(1) })).min(1),
})
export type AgentIdentity = z.infer<typeof AgentIdentity>

const FILES = {
  identity: 'agent.json',
  ca: 'ca.crt',
  identityKey: 'identity.key',
  boxKey: 'box.key',
} as const

/** What the run loop keeps next to the identity. */
export const STATE_PATHS = { journal: 'journal', spool: 'spool', status: 'status.json' } as const

export class StateError extends Error {
  override name = 'StateError'
}

export interface EnrollmentState {
  identity: AgentIdentity
  caCertPem: string
  /** Raw 32-byte Ed25519 seed. */
  identitySeed: Uint8Array
  /** Raw 32-byte X25519 secret key. */
  boxSecretKey: Uint8Array
}

export function isEnrolled(dir: string): boolean {
  return existsSync(path.join(dir, FILES.identity))
}

function writePrivate(file: string, content: string | Uint8Array, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`
  writeFileSync(tmp, content, { mode })
  renameSync(tmp, file)
}

/**
 * Writes an enrollment: keys (0600) first, the identity file last, so a half-written state dir
 * never looks enrolled. Refuses to overwrite an existing enrollment.
 */
export function writeEnrollment(dir: string, state: EnrollmentState): void {
  if (isEnrolled(dir)) throw new StateError(`${dir} already holds an enrolled agent (${FILES.identity}); remove it to enrol again`)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const written: string[] = []
  try {
    for (const [name, content, mode] of [
      [FILES.identityKey, Buffer.from(state.identitySeed).toString('base64') + '\n', 0o600],
      [FILES.boxKey, Buffer.from(state.boxSecretKey).toString('base64') + '\n', 0o600],
      [FILES.ca, state.caCertPem, 0o644],
      [FILES.identity, JSON.stringify(AgentIdentity.parse(state.identity), null, 2) + '\n', 0o600],
    ] as const) {
      const file = path.join(dir, name)
      writePrivate(file, content, mode)
      written.push(file)
    }
  } catch (err) {
    for (const file of written) rmSync(file, { force: true })
    throw new StateError(`cannot write the agent state to ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
  }
}

export function readEnrollment(dir: string): EnrollmentState {
  if (!isEnrolled(dir)) throw new StateError(`${dir} holds no enrolled agent; run \`opsconductor-agent enroll\` first`)
  const read = (name: string) => readFileSync(path.join(dir, name), 'utf8')
  const key = (name: string) => {
    const bytes = Buffer.from(read(name).trim(), 'base64')
    if (bytes.length !== 32) throw new StateError(`${path.join(dir, name)} is damaged (expected a 32-byte key)`)
    return new Uint8Array(bytes)
  }
  return { identity: readIdentityFile(dir), caCertPem: read(FILES.ca), identitySeed: key(FILES.identityKey), boxSecretKey: key(FILES.boxKey) }
}

function readIdentityFile(dir: string): AgentIdentity {
  const file = path.join(dir, FILES.identity)
  let raw: unknown
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'))
  } catch (err) {
    if (err instanceof SyntaxError) throw new StateError(`${file} is damaged (not JSON)`)
    throw err
  }
  const parsed = AgentIdentity.safeParse(raw)
  if (!parsed.success) throw new StateError(`${file} is damaged`)
  return parsed.data
}

/** The public half of the enrollment (no private keys read): what `status` shows. */
export function readIdentity(dir: string): { identity: AgentIdentity; caFingerprint: string } {
  if (!isEnrolled(dir)) throw new StateError(`${dir} holds no enrolled agent; run \`opsconductor-agent enroll\` first`)
  const identity = readIdentityFile(dir)
  let fingerprint: string
  try {
    fingerprint = caFingerprint(readFileSync(path.join(dir, FILES.ca), 'utf8'))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EACCES') throw err
    throw new StateError(`${path.join(dir, FILES.ca)} is missing or damaged`)
  }
  return { identity, caFingerprint: fingerprint }
}

/**
 * Deletes the identity (its file first, so a partial removal never looks enrolled), the keys, the journal, the
 * spool and the status file. The directory itself stays: it belongs to the service account. Returns what it removed.
 */
export function removeEnrollment(dir: string): string[] {
  const names = [FILES.identity, FILES.identityKey, FILES.boxKey, FILES.ca, STATE_PATHS.status, STATE_PATHS.journal, STATE_PATHS.spool]
  const leftovers = readdirSync(dir).filter((n) => n.endsWith('.tmp'))
  const removed: string[] = []
  for (const name of [...names, ...leftovers]) {
    const file = path.join(dir, name)
    if (!existsSync(file)) continue
    rmSync(file, { recursive: true, force: true })
    removed.push(name)
  }
  return removed
}

/** Replaces the accepted controller signing keys (after an announcement over an authenticated session). */
export function writeSigningKeys(dir: string, keys: AgentIdentity['signing_keys']): void {
  const file = path.join(dir, FILES.identity)
  const identity = readIdentityFile(dir)
  writePrivate(file, JSON.stringify(AgentIdentity.parse({ ...identity, signing_keys: keys }), null, 2) + '\n', 0o600)
}

/** Replaces the stored controller list (`run --controller` / OPSC_AGENT_CONTROLLERS); the rest of the identity stays. */
export function writeControllers(dir: string, controllers: string[]): void {
  const file = path.join(dir, FILES.identity)
  const identity = readIdentityFile(dir)
  writePrivate(file, JSON.stringify(AgentIdentity.parse({ ...identity, controllers }), null, 2) + '\n', 0o600)
}

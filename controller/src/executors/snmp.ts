import { createCipheriv } from 'node:crypto'
import { isIPv6 } from 'node:net'
import snmp from 'net-snmp'
import { z } from 'zod'
import { connectionError, oneLine, runStep, StepFailure, useCredential, type CredentialOf } from './outcome.ts'
import type { StepExecutor, StepOutputSink } from './types.ts'

/*
 * `snmp.get` (a list of OIDs) and `snmp.walk` (a subtree) against the step's target, with an
 * `snmp` credential: v2c community, or a v3 user (noAuthNoPriv, authNoPriv or authPriv with
 * md5/sha and des/aes). OIDs are numeric: the controller loads no MIBs.
 */

const Oid = z
  .string()
  .trim()
  .regex(/^\.?[0-2](\.\d{1,10}){1,127}$/, 'a numeric OID such as 1.3.6.1.2.1.1.5.0')
  .transform((oid) => oid.replace(/^\./, ''))

export const SnmpInput = z
  .object({
    /** Name or id of an snmp credential. */
    credential: z.string().min(1).max(200),
    /** snmp.get: the OIDs to read. */
    oids: z.array(Oid).min(1).max(128).optional(),
    /** snmp.walk: the subtree to read. */
    oid: Oid.optional(),
    port: z.number().int().min(1).max(65535).default(161),
    /** Resends after a request timed out. */
    retries: z.number().int().min(0).max(10).default(1),
    /** How long to wait for each answer. */
    timeout_ms: z.number().int().min(100).max(60_000).default(5000),
    /** snmp.walk: varbinds kept (the walk stops there; `truncated` says so). */
    max_rows: z.number().int().min(1).max(100_000).default(10_000),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.oids === undefined) === (v.oid === undefined)) ctx.addIssue({ code: 'custom', path: ['oids'], message: 'give oids (snmp.get) or oid (snmp.walk)' })
  })
export type SnmpInput = z.output<typeof SnmpInput>

export interface SnmpVarbind {
  oid: string
  type: string
  value: string | number | null
}

// SMIv2 names, as snmpget prints them (net-snmp's own table says Counter/Gauge).
const TYPE_NAMES: Record<number, string> = {
  1: 'Boolean',
  2: 'Integer',
  3: 'BitString',
  4: 'OctetString',
  5: 'Null',
  6: 'OID',
  64: 'IpAddress',
  65: 'Counter32',
  66: 'Gauge32',
  67: 'TimeTicks',
  68: 'Opaque',
  70: 'Counter64',
  128: 'NoSuchObject',
  129: 'NoSuchInstance',
  130: 'EndOfMibView',
}

const WALK_REPETITIONS = 20

type SnmpCredential = CredentialOf<'snmp'>

export const snmpExecutor: StepExecutor<SnmpInput> = {
  types: ['snmp.get', 'snmp.walk'],
  input: SnmpInput,
  needsTarget: true,
  run(type, input, x) {
    return runStep(x, async (signal) => {
      if (type !== 'snmp.get' && type !== 'snmp.walk') throw new Error(`snmpExecutor cannot run ${type}`)
      if (type === 'snmp.get' && input.oids === undefined) throw new StepFailure('snmp.get takes `oids`, not `oid`')
      if (type === 'snmp.walk' && input.oid === undefined) throw new StepFailure('snmp.walk takes `oid`, not `oids`')
      if (!x.target) throw new StepFailure(`${type} needs a target`)
      const cred = await useCredential(x, input.credential, 'snmp')
      const address = x.target.address
      const where = `${isIPv6(address) ? `[${address}]` : address}:${input.port}`
      const session = openSession(cred, address, input)
      const done = new Promise<never>((_resolve, reject) => {
        session.on('error', reject)
        signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
      })
      done.catch(() => {})
      try {
        const work = type === 'snmp.get' ? get(session, input.oids!) : walk(session, input.oid!, input.max_rows)
        const { varbinds, truncated } = await Promise.race([work, done])
        writeVarbinds(x.output, varbinds, truncated)
        const result = type === 'snmp.walk' ? { varbinds, truncated } : { varbinds }
        const missing = varbinds.filter((vb) => vb.value === null && vb.type !== 'Null')
        if (missing.length > 0) return { status: 'failed', error: missing.map((vb) => `${vb.oid}: ${vb.type}`).join(', '), result }
        return { status: 'succeeded', result }
      } catch (err) {
        if (signal.aborted) throw err
        throw new StepFailure(failureMessage(err, where, address, input), undefined, { cause: err })
      } finally {
        session.close()
      }
    })
  },
}

/** OpenSSL 3 moved DES to its legacy provider, which Node loads only with --openssl-legacy-provider. */
function desAvailable(): boolean {
  try {
    createCipheriv('des-cbc', Buffer.alloc(8), Buffer.alloc(8))
    return true
  } catch {
    return false
  }
}

function openSession(cred: SnmpCredential, address: string, input: SnmpInput): snmp.Session {
  if (cred.version === 'v3' && cred.priv_protocol === 'des' && !desAvailable()) {
    throw new StepFailure('SNMPv3 DES privacy needs the OpenSSL legacy provider, which this controller has not loaded (start it with NODE_OPTIONS=--openssl-legacy-provider), or switch the agent and credential to AES')
  }
  const transport = isIPv6(address) ? 'udp6' : 'udp4'
  const common = { port: input.port, retries: input.retries, timeout: input.timeout_ms, transport } as const
  if (cred.version === 'v2c') return snmp.createSession(address, cred.community ?? '', { ...common, version: snmp.Version2c })
  const level = cred.priv_protocol ? snmp.SecurityLevel.authPriv : cred.auth_protocol ? snmp.SecurityLevel.authNoPriv : snmp.SecurityLevel.noAuthNoPriv
  const user: snmp.User = { name: cred.username ?? '', level }
  if (cred.auth_protocol) Object.assign(user, { authProtocol: snmp.AuthProtocols[cred.auth_protocol], authKey: cred.auth_password })
  if (cred.priv_protocol) Object.assign(user, { privProtocol: snmp.PrivProtocols[cred.priv_protocol], privKey: cred.priv_password })
  return snmp.createV3Session(address, user, { ...common, version: snmp.Version3 })
}

function get(session: snmp.Session, oids: string[]): Promise<{ varbinds: SnmpVarbind[]; truncated: boolean }> {
  return new Promise((resolve, reject) => {
    session.get(oids, (err, varbinds) => (err ? reject(err) : resolve({ varbinds: (varbinds ?? []).map(toVarbind), truncated: false })))
  })
}

/** The subtree under `oid` (GetBulk for v2c/v3), stopping after `maxRows`. */
function walk(session: snmp.Session, oid: string, maxRows: number): Promise<{ varbinds: SnmpVarbind[]; truncated: boolean }> {
  const varbinds: SnmpVarbind[] = []
  let truncated = false
  return new Promise((resolve, reject) => {
    session.subtree(
      oid,
      WALK_REPETITIONS,
      (batch: snmp.Varbind[]) => {
        for (const vb of batch) {
          if (varbinds.length >= maxRows) {
            truncated = true
            return true
          }
          varbinds.push(toVarbind(vb))
        }
        return false
      },
      (err: Error | null) => (err ? reject(err) : resolve({ varbinds, truncated })),
    )
  })
}

function toVarbind(vb: snmp.Varbind): SnmpVarbind {
  return { oid: vb.oid, type: TYPE_NAMES[vb.type as number] ?? `type ${vb.type}`, value: valueOf(vb) }
}

/** Text for strings that are printable UTF-8, colon-separated hex for binary ones (MAC addresses…). */
function valueOf(vb: snmp.Varbind): string | number | null {
  const value = vb.value as unknown
  if (value === null || value === undefined || (vb.type as number) >= 128 || (vb.type as number) === 5) return null
  if (Buffer.isBuffer(value)) {
    if ((vb.type as number) === 70) {
      const n = value.length === 0 ? 0n : BigInt(`0x${value.toString('hex')}`)
      return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString()
    }
    const text = value.toString('utf8')
    if ((vb.type as number) === 4 && !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufffd]/.test(text)) return text
    return [...value].map((b) => b.toString(16).padStart(2, '0')).join(':')
  }
  if (typeof value === 'number' || typeof value === 'string') return value
  if (typeof value === 'bigint') return value.toString()
  return String(value)
}

function writeVarbinds(output: StepOutputSink, varbinds: SnmpVarbind[], truncated: boolean): void {
  const lines = varbinds.map((vb) => `${vb.oid} = ${vb.type}: ${vb.value === null ? '' : String(vb.value).replace(/\r?\n/g, '\\n')}`.trimEnd())
  if (lines.length > 0) output.write('stdout', `${lines.join('\n')}\n`)
  if (truncated) output.write('stderr', `[walk stopped at max_rows ${varbinds.length}]\n`)
}

function failureMessage(err: unknown, where: string, address: string, input: SnmpInput): string {
  const name = err instanceof Error ? err.name : ''
  const message = oneLine(err instanceof Error ? err.message : String(err))
  switch (name) {
    case 'RequestTimedOutError': {
      const attempts = input.retries + 1
      // An agent stays silent for a wrong community: say so, it is the usual cause.
      return `no response from ${where}: timed out after ${attempts} attempt${attempts > 1 ? 's' : ''} of ${input.timeout_ms} ms (agent down or unreachable, or wrong community or credentials)`
    }
    case 'ResponseInvalidError':
      return `SNMP agent at ${where} rejected the request: ${message}`
    case 'RequestFailedError':
      return `SNMP agent at ${where} answered with an error: ${message}`
    default:
      if (typeof (err as { code?: unknown }).code === 'string') return connectionError(err, where, address).message
      return `SNMP request to ${where} failed: ${message}`
  }
}

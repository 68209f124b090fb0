import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { AgentService, EnrollRequestSchema, type EnrollRequest, type EnrollResponse } from '../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { grpcServiceDefinition } from '../../proto/src/grpc.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { generateBoxKeyPair } from '../../proto/src/seal.ts'
import { exportEd25519PrivateKey, generateEd25519KeyPair } from '../../proto/src/sign.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { collectHostFacts } from './host-facts.ts'
import { fetchPinnedCa, normaliseFingerprint } from './pin.ts'
import { isEnrolled, StateError, writeEnrollment } from './state.ts'

export class EnrollError extends Error {
  override name = 'EnrollError'
}

const AgentClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')
type EnrollFn = (req: EnrollRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: EnrollResponse) => void) => void

export function parseControllerAddress(address: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(address.trim())
  const port = Number(m?.[2])
  if (!m || port < 1 || port > 65535) throw new EnrollError(`--controller must be HOST:PORT (got "${address}")`)
  return { host: m[1]!, port }
}

/** `host:port` as grpc-js dials it (an IPv6 host in brackets). */
export function formatControllerAddress({ host, port }: { host: string; port: number }): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`
}

/**
 * The controller addresses an operator gave: `--controller` repeated and/or comma-separated lists
 * (one deployment's controllers, all presenting the same CA). Checked, normalised, duplicates dropped,
 * order kept. `what` names the setting in the error (a flag or an environment variable).
 */
export function parseControllerList(values: string | string[], what = '--controller'): string[] {
  const given = Array.isArray(values) ? values : [values]
  const items = given.flatMap((v) => v.split(',')).map((v) => v.trim())
  if (items.every((v) => v === '')) throw new EnrollError(`${what} needs at least one HOST:PORT`)
  const out: string[] = []
  for (const item of items) {
    if (item === '') throw new EnrollError(`${what} has an empty entry (got "${given.join(',')}")`)
    let address: string
    try {
      address = formatControllerAddress(parseControllerAddress(item))
    } catch {
      throw new EnrollError(`${what} must be HOST:PORT, or several separated by commas (got "${item}")`)
    }
    if (!out.includes(address)) out.push(address)
  }
  return out
}

export interface EnrollOptions {
  /** One controller address, or every controller of the deployment (they must all present the pinned CA). */
  controller: string | string[]
  token: string
  caFingerprint: string
  stateDir: string
  timeoutMs?: number
  /** Told about each controller that could not be reached at enrolment (it is kept in the list). */
  onUnreachable?(address: string, reason: string): void
}

/**
 * Pins the CA on every given controller: each one reached must present the pinned CA for the
 * address dialled (a controller with another CA would refuse the agent later, so that is an error
 * now). Unreachable ones are kept (a controller may be down while a host is enrolled); at least one
 * must answer. Returns the pinned CA and the first controller that answered.
 */
async function pinAll(controllers: string[], fingerprint: string, timeoutMs: number | undefined, onUnreachable: EnrollOptions['onUnreachable']) {
  let pinned: { caCertPem: string; address: string } | undefined
  const unreachable: string[] = []
  for (const address of controllers) {
    const { host, port } = parseControllerAddress(address)
    try {
      const caCertPem = await fetchPinnedCa(host, port, fingerprint, timeoutMs)
      pinned ??= { caCertPem, address }
    } catch (err) {
      const message = (err as Error).message
      if (controllers.length === 1) throw err
      if (!/^(cannot reach|no TLS answer)/.test(message)) throw new EnrollError(`controller ${address}: ${message}`)
      unreachable.push(message)
      onUnreachable?.(address, message)
    }
  }
  if (!pinned) throw new EnrollError(`no controller could be reached: ${unreachable.join('; ')}`)
  return pinned
}

/**
 * Enrolment: pin the controller's CA by fingerprint, create the agent's keys locally (private
 * keys never leave the host), exchange the one-time token for an agent id, then write the state.
 * With several controllers, every reachable one must present the pinned CA; the token is used on
 * the first that answered, and all of them are stored for fail-over. Any failure leaves the state
 * dir untouched.
 */
export async function enroll(opts: EnrollOptions): Promise<{ agentId: string; controllers: string[] }> {
  const fingerprint = normaliseFingerprint(opts.caFingerprint)
  const controllers = parseControllerList(opts.controller)
  if (isEnrolled(opts.stateDir)) throw new StateError(`${opts.stateDir} already holds an enrolled agent; remove it to enrol again`)
  const { caCertPem, address } = await pinAll(controllers, fingerprint, opts.timeoutMs, opts.onUnreachable)
  const identity = generateEd25519KeyPair()
  const box = generateBoxKeyPair()
  const request = create(EnrollRequestSchema, {
    enrollmentToken: opts.token.trim(),
    agentProtocol: { ...PROTOCOL_VERSION },
    agentVersion: VERSION,
    identityPublicKey: identity.publicKeyRaw,
    boxPublicKey: box.publicKey,
    host: collectHostFacts(),
  })
  const client = new AgentClient(address, grpc.credentials.createSsl(Buffer.from(caCertPem)))
  const call = (client as unknown as { enroll: EnrollFn }).enroll.bind(client)
  const response = await new Promise<EnrollResponse>((resolve, reject) =>
    call(request, { deadline: Date.now() + (opts.timeoutMs ?? 15_000) }, (err, res) => (err ? reject(err) : resolve(res))),
  )
    .catch((err: grpc.ServiceError) => {
      throw new EnrollError(`enrollment refused: ${err.details || err.message}`)
    })
    .finally(() => client.close())
  writeEnrollment(opts.stateDir, {
    identity: {
      agent_id: response.agentId,
      controllers,
      installation_id: response.installationId,
      enrolled_at: new Date().toISOString(),
      signing_keys: response.signingKeys.map((k) => ({ key_id: k.keyId, public_key: Buffer.from(k.publicKey).toString('base64') })),
    },
    // Always the CA we pinned and verified, never what the response claims.
    caCertPem,
    identitySeed: exportEd25519PrivateKey(identity.privateKey),
    boxSecretKey: box.secretKey,
  })
  return { agentId: response.agentId, controllers }
}

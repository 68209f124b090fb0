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

export interface EnrollOptions {
  controller: string
  token: string
  caFingerprint: string
  stateDir: string
  timeoutMs?: number
}

/**
 * Enrolment: pin the controller's CA by fingerprint, create the agent's keys locally (private
 * keys never leave the host), exchange the one-time token for an agent id, then write the state.
 * Any failure leaves the state dir untouched.
 */
export async function enroll(opts: EnrollOptions): Promise<{ agentId: string }> {
  const fingerprint = normaliseFingerprint(opts.caFingerprint)
  const { host, port } = parseControllerAddress(opts.controller)
  if (isEnrolled(opts.stateDir)) throw new StateError(`${opts.stateDir} already holds an enrolled agent; remove it to enrol again`)
  const caCertPem = await fetchPinnedCa(host, port, fingerprint, opts.timeoutMs)
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
  const client = new AgentClient(`${host.includes(':') ? `[${host}]` : host}:${port}`, grpc.credentials.createSsl(Buffer.from(caCertPem)))
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
      controllers: [`${host}:${port}`],
      installation_id: response.installationId,
      enrolled_at: new Date().toISOString(),
      signing_keys: response.signingKeys.map((k) => ({ key_id: k.keyId, public_key: Buffer.from(k.publicKey).toString('base64') })),
    },
    // Always the CA we pinned and verified, never what the response claims.
    caCertPem,
    identitySeed: exportEd25519PrivateKey(identity.privateKey),
    boxSecretKey: box.secretKey,
  })
  return { agentId: response.agentId }
}

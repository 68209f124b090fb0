// Where virtual agents' identities come from:
//  * enrolIdentities: the controller's real Enroll RPC with a token (max_uses ≥ the agents), one key
//    pair per agent generated here, exactly as `opsconductor-agent enroll` does (without a state dir);
//  * seedIdentities: agent rows inserted straight into the controller's database (fast; for benchmarks
//    that hold thousands of agents and are not about enrolment). Needs the controller's Db.
import { create } from '@bufbuild/protobuf'
import * as grpc from '@grpc/grpc-js'
import { AgentService, EnrollRequestSchema, type EnrollRequest, type EnrollResponse } from '../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import { agent } from '../../controller/src/agents/agents.sql.ts'
import type { Db } from '../../controller/src/db/client.ts'
import { grpcServiceDefinition } from '../../proto/src/grpc.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { generateBoxKeyPair } from '../../proto/src/seal.ts'
import { exportEd25519PrivateKey, generateEd25519KeyPair } from '../../proto/src/sign.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { collectHostFacts } from '../../agent/src/host-facts.ts'
import type { SimIdentity } from './protocol.ts'

const AgentClient = grpc.makeGenericClientConstructor(grpcServiceDefinition(AgentService), 'AgentService')
type EnrollFn = (req: EnrollRequest, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: EnrollResponse) => void) => void

/** Enrols one virtual agent per index (host name `${namePrefix}-${index}`), `concurrency` at a time. */
export async function enrolIdentities(opts: {
  controller: string
  caPem: string
  token: string
  namePrefix: string
  indices: number[]
  concurrency: number
  onEnrolled?: (done: number) => void
}): Promise<SimIdentity[]> {
  const client = new AgentClient(opts.controller, grpc.credentials.createSsl(Buffer.from(opts.caPem)))
  const enroll = (client as unknown as { enroll: EnrollFn }).enroll.bind(client)
  const facts = collectHostFacts()
  const out: SimIdentity[] = []
  let next = 0
  const lane = async () => {
    while (next < opts.indices.length) {
      const index = opts.indices[next++]!
      const identity = generateEd25519KeyPair()
      const box = generateBoxKeyPair()
      const hostname = `${opts.namePrefix}-${index}`
      const request = create(EnrollRequestSchema, {
        enrollmentToken: opts.token,
        agentProtocol: { ...PROTOCOL_VERSION },
        agentVersion: VERSION,
        identityPublicKey: identity.publicKeyRaw,
        boxPublicKey: box.publicKey,
        host: { ...facts, hostname, fqdn: hostname, machineId: `${facts.machineId}-${hostname}` },
      })
      const response = await new Promise<EnrollResponse>((resolve, reject) =>
        enroll(request, { deadline: Date.now() + 60_000 }, (err, res) => (err ? reject(new Error(`enrolment of ${hostname} refused: ${err.details || err.message}`)) : resolve(res))),
      )
      out.push({ id: response.agentId, index, seed: Buffer.from(exportEd25519PrivateKey(identity.privateKey)).toString('base64'), box: Buffer.from(box.secretKey).toString('base64') })
      opts.onEnrolled?.(out.length)
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, lane))
  } finally {
    client.close()
  }
  return out.sort((a, b) => a.index - b.index)
}

/** Agent rows as enrollment would leave them (but without a target), inserted directly; returns each agent's identity. */
export async function seedIdentities(db: Db, count: number, namePrefix = 'bench-agent'): Promise<SimIdentity[]> {
  const identities: SimIdentity[] = []
  for (let start = 0; start < count; start += 1000) {
    const rows = []
    for (let i = start; i < Math.min(count, start + 1000); i++) {
      const identity = generateEd25519KeyPair()
      const box = generateBoxKeyPair()
      const id = crypto.randomUUID()
      identities.push({ id, index: i, seed: Buffer.from(exportEd25519PrivateKey(identity.privateKey)).toString('base64'), box: Buffer.from(box.secretKey).toString('base64') })
      rows.push({
        id,
        name: `${namePrefix}-${i}`,
        hostname: `${namePrefix}-${i}`,
        identityPublicKey: Buffer.from(identity.publicKeyRaw).toString('base64'),
        boxPublicKey: Buffer.from(box.publicKey).toString('base64'),
        agentVersion: VERSION,
        protocolVersion: `${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor}`,
      })
    }
    await db.insert(agent).values(rows)
  }
  return identities
}

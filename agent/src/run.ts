import path from 'node:path'
import type { KeyObject } from 'node:crypto'
import { pino } from 'pino'
import { importEd25519PrivateKey, importEd25519PublicKey } from '../../proto/src/sign.ts'
import { ControllerConnection } from './connection.ts'
import { Journal } from './journal.ts'
import { Runner } from './runner.ts'
import { Spool } from './spool.ts'
import { readEnrollment, writeSigningKeys } from './state.ts'

export interface AgentRunOptions {
  stateDir: string
  /** Assignments run at once; more wait in order. */
  maxConcurrent: number
  /** Spool budget on disk for unacked output and results. */
  spoolMaxBytes: number
  /** When set, put_file/get_file refuse paths outside these directories. */
  allowedRoots: string[]
  backoffCapMs: number
  backoffBaseMs: number
  logLevel: string
}

export interface RunningAgent {
  stop(): Promise<void>
}

/** The agent service: connection loop + runner over the state dir's journal and spool. */
export function runAgent(opts: AgentRunOptions): RunningAgent {
  const log = pino({ level: opts.logLevel, base: { service: 'opsconductor-agent' }, redact: ['*.env', '*.secrets', 'env', 'secrets'] }, pino.destination(2))
  const state = readEnrollment(opts.stateDir)
  const agentId = state.identity.agent_id
  const signingKeys = new Map<string, KeyObject>(state.identity.signing_keys.map((k) => [k.key_id, importEd25519PublicKey(Buffer.from(k.public_key, 'base64'))]))
  const journal = Journal.open(path.join(opts.stateDir, 'journal'))
  const spool = Spool.open(path.join(opts.stateDir, 'spool'), { maxBytes: opts.spoolMaxBytes })
  let runner: Runner | undefined
  const connection: ControllerConnection = new ControllerConnection({
    agentId,
    controllers: state.identity.controllers,
    caCertPem: state.caCertPem,
    identityKey: importEd25519PrivateKey(state.identitySeed),
    log,
    backoffBaseMs: opts.backoffBaseMs,
    backoffCapMs: opts.backoffCapMs,
    handlers: {
      inFlight: () => runner!.inFlight(),
      running: () => runner!.runningIds(),
      signingKeyIds: () => [...signingKeys.keys()],
      onReady: (ready) => runner!.onReady(ready.outputAcks),
      onAssignment: (signed) => runner!.onAssignment(signed),
      onCancel: (cancel) => runner!.onCancel(cancel),
      onFileChunk: (chunk) => runner!.onFileChunk(chunk),
      onOutputAck: (ack) => runner!.onOutputAck(ack),
      onResultAck: (id) => runner!.onResultAck(id),
      onDisconnected: () => runner!.onDisconnected(),
      onSigningKeys: (keys) => {
        // Only ever from an authenticated session over the pinned CA: the controller's word on its keys.
        const next = keys.filter((k) => k.publicKey.length === 32)
        if (next.length === 0) return
        const ids = next.map((k) => k.keyId).sort().join(',')
        if (ids === [...signingKeys.keys()].sort().join(',')) return
        signingKeys.clear()
        for (const k of next) signingKeys.set(k.keyId, importEd25519PublicKey(k.publicKey))
        writeSigningKeys(opts.stateDir, next.map((k) => ({ key_id: k.keyId, public_key: Buffer.from(k.publicKey).toString('base64') })))
        log.info({ keyIds: ids }, 'agent.signing_keys_updated')
      },
    },
  })
  runner = new Runner({
    agentId,
    journal,
    spool,
    signingKeys,
    boxSecretKey: state.boxSecretKey,
    connection,
    log,
    maxConcurrent: opts.maxConcurrent,
    allowedRoots: opts.allowedRoots,
  })
  runner.recoverInterrupted()
  log.info({ agentId, controllers: state.identity.controllers, stateDir: opts.stateDir }, 'agent.started')
  const loop = connection.run()
  return {
    async stop() {
      log.info('agent.stopping')
      await runner!.shutdown()
      connection.stop()
      await loop
      spool.close()
      journal.close()
      log.info('agent.stopped')
    },
  }
}

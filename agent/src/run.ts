import path from 'node:path'
import type { KeyObject } from 'node:crypto'
import { pino } from 'pino'
import { importEd25519PrivateKey, importEd25519PublicKey } from '../../proto/src/sign.ts'
import { ControllerConnection } from './connection.ts'
import { Journal } from './journal.ts'
import { Runner } from './runner.ts'
import { Spool } from './spool.ts'
import { readEnrollment, STATE_PATHS, writeControllers, writeSigningKeys } from './state.ts'
import { StatusPublisher } from './status-file.ts'

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
  /** Replaces the stored controller list (and is stored): `run --controller` / OPSC_AGENT_CONTROLLERS. */
  controllers?: string[]
}

export interface RunningAgent {
  /** Resolves when the connection loop ends: after stop(), or on its own when the controller refuses this identity. */
  readonly done: Promise<{ refused?: string }>
  /** Interrupts (and journals) what is running, closes the session and the files, publishes the final status. */
  stop(): Promise<void>
}

/** The agent service: connection loop + runner over the state dir's journal and spool. */
export function runAgent(opts: AgentRunOptions): RunningAgent {
  const log = pino({ level: opts.logLevel, base: { service: 'opsconductor-agent' }, redact: ['*.env', '*.secrets', 'env', 'secrets'] }, pino.destination(2))
  const state = readEnrollment(opts.stateDir)
  const agentId = state.identity.agent_id
  const stored = state.identity.controllers
  if (opts.controllers && opts.controllers.join(',') !== stored.join(',')) {
    writeControllers(opts.stateDir, opts.controllers)
    log.info({ from: stored, to: opts.controllers }, 'agent.controllers_changed')
  }
  const controllers = opts.controllers ?? stored
  const signingKeys = new Map<string, KeyObject>(state.identity.signing_keys.map((k) => [k.key_id, importEd25519PublicKey(Buffer.from(k.public_key, 'base64'))]))
  const journal = Journal.open(path.join(opts.stateDir, STATE_PATHS.journal))
  const spool = Spool.open(path.join(opts.stateDir, STATE_PATHS.spool), { maxBytes: opts.spoolMaxBytes })
  const status = new StatusPublisher(opts.stateDir, () => spool.stats(), log)
  let runner: Runner | undefined
  const connection: ControllerConnection = new ControllerConnection({
    agentId,
    controllers,
    caCertPem: state.caCertPem,
    identityKey: importEd25519PrivateKey(state.identitySeed),
    log,
    backoffBaseMs: opts.backoffBaseMs,
    backoffCapMs: opts.backoffCapMs,
    onState: ({ connected, controller, error }) =>
      status.update({ state: connected ? 'connected' : 'connecting', controller, ...(connected ? { last_error: null } : error ? { last_error: error } : {}) }),
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
  status.start()
  const loop = connection.run()
  void loop.then(({ refused }) => {
    if (refused) log.error({ details: refused }, 'agent.identity_refused')
  })
  return {
    done: loop,
    async stop() {
      log.info('agent.stopping')
      await runner!.shutdown()
      connection.stop()
      const { refused } = await loop
      status.stop(refused ? 'refused' : 'stopped', refused)
      spool.close()
      journal.close()
      log.info('agent.stopped')
    },
  }
}

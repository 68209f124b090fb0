import { createHash, randomUUID } from 'node:crypto'
import { create, toBinary, type MessageInitShape } from '@bufbuild/protobuf'
import { and, eq, inArray, isNull, lt, or, sql } from 'drizzle-orm'
import type { PgUpdateSetSource } from 'drizzle-orm/pg-core'
import type { Hello } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'
import {
  AssignmentSchema,
  RejectReason,
  type AssignmentAccepted,
  type AssignmentRejected,
  type AssignmentResult,
  type OutputChunk,
} from '../../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { sealForAgent } from '../../../../proto/src/seal.ts'
import { signAssignment } from '../../../../proto/src/sign.ts'
import type { AppContext } from '../../context.ts'
import { Batcher } from '../../db/batcher.ts'
import { rowsOf } from '../../db/migrate.ts'
import { AppError, NotFoundError } from '../../errors.ts'
import { agent } from '../agents.sql.ts'
import { frame } from '../gateway/frames.ts'
import type { SessionRegistry } from '../gateway/registry.ts'
import type { AgentSession, SessionHooks } from '../gateway/session.ts'
import { activeSigningKeys, type SigningKey } from '../signing-keys.ts'
import { agentAssignment, FINAL_STATUSES, type AgentAssignmentRow, type AssignmentStatus } from './assignments.sql.ts'
import { AssignmentEvents, type AssignmentEvent, type AssignmentOutcome } from './events.ts'
import { OutputWriter } from './output.ts'
import { isUuid } from '../../db/client.ts'

export type AssignmentAction = NonNullable<MessageInitShape<typeof AssignmentSchema>['action']>

export interface DispatchOptions {
  runId?: string
  stepId?: string
  /** Sealed to the agent's X25519 key; the agent exposes each as an environment variable of that name. */
  secrets?: Record<string, string | Uint8Array>
  /** How long the agent may still accept the assignment (the delivery deadline). Default 15 minutes. */
  ttlMs?: number
  notBefore?: Date
  /** A put_file action's content, sent in FileChunk frames after the assignment. */
  content?: Uint8Array
  /** The job engine uses the step run's id, so a controller that takes the step over finds the assignment. */
  assignmentId?: string
  /** Values the agent replaces with **** in the output (never given to the process). */
  maskValues?: readonly (string | Uint8Array)[]
}

export interface DispatchedAssignment {
  assignmentId: string
  /** Status changes, output and the final outcome, live; ends after `finished`. */
  events: AsyncIterable<AssignmentEvent>
  /** Resolves with the final outcome. */
  done: Promise<AssignmentOutcome>
}

const DEFAULT_TTL_MS = 15 * 60_000
const FILE_CHUNK_BYTES = 64 * 1024
const CANCEL_GRACE_MS = 5_000
const SIGNING_KEY_REFRESH_MS = 60_000
const OPEN: AssignmentStatus[] = ['pending', 'sent', 'running']

type NewAssignment = typeof agentAssignment.$inferInsert & Pick<AgentAssignmentRow, 'id' | 'status' | 'signed' | 'signature' | 'keyId'>
type PendingInsert = { row: NewAssignment; error?: unknown }

const REJECT_NAMES: Record<number, string> = {
  [RejectReason.BAD_SIGNATURE]: 'bad_signature',
  [RejectReason.UNKNOWN_KEY]: 'unknown_key',
  [RejectReason.WRONG_AGENT]: 'wrong_agent',
  [RejectReason.EXPIRED]: 'expired',
  [RejectReason.NOT_YET_VALID]: 'not_yet_valid',
  [RejectReason.REPLAYED]: 'replayed',
  [RejectReason.MALFORMED]: 'malformed',
  [RejectReason.UNSUPPORTED_ACTION]: 'unsupported_action',
  [RejectReason.SECRET_UNOPENABLE]: 'secret_unopenable',
  [RejectReason.AT_CAPACITY]: 'at_capacity',
}

export function outcomeOf(row: AgentAssignmentRow): AssignmentOutcome {
  return {
    assignmentId: row.id,
    status: row.status,
    exitCode: row.exitCode,
    signal: row.signal,
    error: row.error,
    rejectReason: row.rejectReason,
    startedAt: row.startedAt,
    finishedAt: row.finishedAt,
    outputBytes: row.outputBytes,
    truncated: row.truncated,
    fileSha256: row.fileSha256,
    fileSize: row.fileSize,
  }
}

/** How an agent's result maps to a final status. */
function statusOfResult(result: AssignmentResult): AssignmentStatus {
  if (result.timedOut) return 'timed_out'
  if (result.interrupted) return 'interrupted'
  if (result.error || result.exitCode !== 0) return 'failed'
  return 'succeeded'
}

/**
 * The internal dispatch service the job engine calls: signs an assignment for one agent, delivers
 * it over the agent's live session (now, or when it connects before the deadline), persists what
 * comes back and reports it as events. The database row is the record; memory only speeds it up.
 */
export class Dispatcher implements SessionHooks {
  readonly events = new AssignmentEvents()
  private readonly output: OutputWriter
  private readonly content = new Map<string, Uint8Array>()
  private readonly lostTimers = new Map<string, NodeJS.Timeout>()
  private signer: { key: SigningKey; publicIds: string; loadedAt: number } | undefined

  constructor(
    private readonly ctx: AppContext,
    private readonly registry: SessionRegistry,
    private readonly opts: { lostGraceMs: number; outputCapBytes: number },
  ) {
    this.output = new OutputWriter(ctx, this.events, opts.outputCapBytes)
  }

  async dispatch(agentId: string, action: AssignmentAction, opts: DispatchOptions = {}): Promise<DispatchedAssignment> {
    const kind = action.case
    if (!kind) throw new AppError('VALIDATION', 'an assignment needs an action')
    // A live session is an authenticated, unrevoked agent (revocation drops it): no lookup needed.
    const live = this.registry.get(agentId)
    const boxKey = live ? live.boxPublicKey : await this.boxKeyOf(agentId)
    const signer = await this.currentSigner()
    const id = opts.assignmentId ?? randomUUID()
    const now = this.ctx.clock()
    const expiresAt = new Date(now.getTime() + (opts.ttlMs ?? DEFAULT_TTL_MS))
    const assignment = create(AssignmentSchema, {
      assignmentId: id,
      agentId,
      runId: opts.runId ?? '',
      stepId: opts.stepId ?? '',
      issuedAtUnixMs: BigInt(now.getTime()),
      notBeforeUnixMs: BigInt((opts.notBefore ?? now).getTime()),
      expiresAtUnixMs: BigInt(expiresAt.getTime()),
      keyId: signer.keyId,
      action,
      secrets: Object.entries(opts.secrets ?? {}).map(([name, value]) => sealForAgent(boxKey, value, { assignmentId: id, name })),
      maskValues: (opts.maskValues ?? []).map((value, i) => sealForAgent(boxKey, value, { assignmentId: id, name: `mask${i}` })),
    })
    const signed = signAssignment(signer.privateKey, signer.keyId, toBinary(AssignmentSchema, assignment))
    const session = this.registry.get(agentId)
    const row = {
      id,
      agentId,
      runId: opts.runId ?? null,
      stepId: opts.stepId ?? null,
      actionKind: kind,
      // Written to a live session right after the insert: recorded as sent at once (one statement less).
      status: session ? ('sent' as const) : ('pending' as const),
      sentAt: session ? now : null,
      signed: Buffer.from(signed.assignment),
      signature: Buffer.from(signed.signature),
      keyId: signed.keyId,
      createdAt: now,
      expiresAt,
    }
    await this.insert(row)
    if (opts.content) this.content.set(id, opts.content)
    this.output.seed(id, agentId)
    const events = this.events.stream(id)
    const done = this.watchOutcome(id).outcome // a new assignment: nothing to read back yet
    // The session it is written to is the one the agent holds now: the insert may have waited (a batch,
    // a database restart) while the agent reconnected, and the new session's resend ran before the row existed.
    const current = this.registry.get(agentId)
    if (current) await this.deliver(current, row)
    return { assignmentId: id, events, done }
  }

  /** Resolves once the row is stored; a fan-out's rows go in one INSERT per event-loop turn. */
  private async insert(row: NewAssignment): Promise<void> {
    const item: PendingInsert = { row }
    await this.inserts.add(item)
    if (item.error) throw item.error
  }

  /** One INSERT for many dispatches; when it fails, each row is tried alone so only the bad one fails (a vanished agent, a duplicate id). */
  private readonly inserts = new Batcher<PendingInsert>(async (items) => {
    try {
      await this.ctx.db.insert(agentAssignment).values(items.map((i) => i.row))
    } catch (err) {
      if (items.length === 1) throw err
      for (const item of items) await this.ctx.db.insert(agentAssignment).values(item.row).catch((e: unknown) => (item.error = e))
    }
  })

  private async boxKeyOf(agentId: string): Promise<Uint8Array> {
    if (!isUuid(agentId)) throw new NotFoundError('agent', agentId)
    const [target] = await this.ctx.db.select({ boxPublicKey: agent.boxPublicKey, revokedAt: agent.revokedAt }).from(agent).where(eq(agent.id, agentId))
    if (!target) throw new NotFoundError('agent', agentId)
    if (target.revokedAt) throw new AppError('CONFLICT', `agent ${agentId} is revoked`)
    return new Uint8Array(Buffer.from(target.boxPublicKey, 'base64'))
  }

  /** The next final outcome of an assignment, as it happens; `stop` forgets the watch. */
  private watchOutcome(assignmentId: string): { outcome: Promise<AssignmentOutcome>; stop(): void } {
    let stop = () => {}
    const outcome = new Promise<AssignmentOutcome>((resolve) => {
      stop = this.events.watch(assignmentId, (event) => {
        if (event.type !== 'finished') return
        stop()
        resolve(event.outcome)
      })
    })
    return { outcome, stop }
  }

  /** Resolves with the final outcome of an assignment (at once when it is already final). */
  async waitFor(assignmentId: string): Promise<AssignmentOutcome> {
    const next = this.watchOutcome(assignmentId) // watching before reading: a verdict in between is not missed
    const current = await this.outcome(assignmentId)
    if (!current || !FINAL_STATUSES.includes(current.status)) return next.outcome
    next.stop()
    return current
  }

  async outcome(assignmentId: string): Promise<AssignmentOutcome | undefined> {
    if (!isUuid(assignmentId)) return undefined
    const [row] = await this.ctx.db.select().from(agentAssignment).where(eq(agentAssignment.id, assignmentId))
    return row ? outcomeOf(row) : undefined
  }

  /** Stops an assignment: before delivery it ends `cancelled`; after, the agent interrupts it. */
  async cancel(assignmentId: string, reason: string): Promise<void> {
    if (!isUuid(assignmentId)) throw new NotFoundError('assignment', assignmentId)
    const [row] = await this.ctx.db.select().from(agentAssignment).where(eq(agentAssignment.id, assignmentId))
    if (!row) throw new NotFoundError('assignment', assignmentId)
    if (row.status === 'pending') {
      await this.finish(assignmentId, 'cancelled', { error: reason }, ['pending'])
      return
    }
    const session = this.registry.get(row.agentId)
    if (session && (row.status === 'sent' || row.status === 'running')) {
      await session.send(frame({ case: 'cancel', value: { assignmentId, reason, graceMs: BigInt(CANCEL_GRACE_MS) } }))
    }
  }

  // ---- session hooks -------------------------------------------------------------------------

  async outputAcksFor(session: AgentSession, hello: Hello): Promise<{ assignmentId: string; ackedSeq: bigint }[]> {
    const ids = hello.inFlightAssignmentIds.filter((id) => isUuid(id))
    if (ids.length === 0) return []
    const rows = await this.ctx.db
      .select({ id: agentAssignment.id, ackedSeq: agentAssignment.ackedSeq })
      .from(agentAssignment)
      .where(and(eq(agentAssignment.agentId, session.agentId), inArray(agentAssignment.id, ids)))
    return rows.map((r) => ({ assignmentId: r.id, ackedSeq: BigInt(r.ackedSeq) }))
  }

  async afterReady(session: AgentSession, hello: Hello): Promise<void> {
    clearTimeout(this.lostTimers.get(session.agentId))
    this.lostTimers.delete(session.agentId)
    const inFlight = new Set(hello.inFlightAssignmentIds)
    const open = await this.ctx.db
      .select()
      .from(agentAssignment)
      .where(and(eq(agentAssignment.agentId, session.agentId), inArray(agentAssignment.status, OPEN)))
      .orderBy(agentAssignment.createdAt)
    const now = this.ctx.clock()
    for (const row of open) {
      if (inFlight.has(row.id)) continue // the agent holds it: its result or output follows from its spool
      if (row.status === 'running') {
        // Started, yet the agent neither runs it nor holds a result: its state was lost.
        await this.finish(row.id, 'agent_lost', { error: 'the agent reconnected without this assignment (its state was lost)' }, ['running'])
      } else if (row.expiresAt.getTime() <= now.getTime()) {
        await this.finish(row.id, 'undelivered', { error: 'the agent was not connected before the assignment expired' }, ['pending', 'sent'])
      } else {
        await this.deliver(session, row)
      }
    }
  }

  onClosed(session: AgentSession): void {
    clearTimeout(this.lostTimers.get(session.agentId))
    const timer = setTimeout(() => {
      this.lostTimers.delete(session.agentId)
      if (!this.registry.get(session.agentId)) void this.markLost(session.agentId).catch((err) => this.ctx.log.error({ err }, 'agents.mark_lost_failed'))
    }, this.opts.lostGraceMs)
    timer.unref()
    this.lostTimers.set(session.agentId, timer)
  }

  onAccepted(session: AgentSession, accepted: AssignmentAccepted): Promise<void> {
    const startedAt = accepted.acceptedAtUnixMs > 0n ? new Date(Number(accepted.acceptedAtUnixMs)) : this.ctx.clock()
    return this.accepts.add({ id: accepted.assignmentId, agentId: session.agentId, startedAt })
  }

  /** Many agents' acceptances in one statement; only this agent's still-undelivered assignment moves to running. */
  private readonly accepts = new Batcher<{ id: string; agentId: string; startedAt: Date }>(async (items) => {
    const valid = items.filter((i) => isUuid(i.id))
    if (valid.length === 0) return
    const values = sql.join(
      valid.map((i) => sql`(${i.id}::uuid, ${i.agentId}::uuid, ${i.startedAt.toISOString()}::timestamptz)`),
      sql`, `,
    )
    const updated = rowsOf<{ id: string }>(
      await this.ctx.db.execute(sql`
        update ${agentAssignment} a set status = 'running', started_at = v.started_at
        from (values ${values}) as v(id, agent_id, started_at)
        where a.id = v.id and a.agent_id = v.agent_id and a.status in ('pending', 'sent')
        returning a.id`),
    )
    const at = new Map(valid.map((i) => [i.id, i.startedAt]))
    for (const { id } of updated) this.events.emit(id, { type: 'status', status: 'running', at: at.get(id)! })
  })

  async onRejected(session: AgentSession, rejected: AssignmentRejected): Promise<void> {
    const id = rejected.assignmentId || (await this.idBySha(session.agentId, rejected.assignmentSha256))
    if (!id) {
      this.ctx.log.warn({ agentId: session.agentId }, 'agents.rejection_unmatched')
      return
    }
    const reason = REJECT_NAMES[rejected.reason] ?? 'unspecified'
    this.ctx.log.warn({ agentId: session.agentId, assignmentId: id, reason }, 'agents.assignment_rejected')
    await this.finish(id, 'rejected', { rejectReason: reason, error: rejected.message.slice(0, 1000) || null }, ['pending', 'sent'], session.agentId)
  }

  onOutput(session: AgentSession, chunks: OutputChunk[]): Promise<{ assignmentId: string; ackedSeq: bigint }[]> {
    return this.output.persist(session.agentId, chunks)
  }

  async onResult(session: AgentSession, result: AssignmentResult): Promise<boolean> {
    // Only an open assignment of this agent takes the verdict; anything else (already final, e.g.
    // agent_lost, or unknown) is acked so the agent forgets it — the first verdict stands.
    if (isUuid(result.assignmentId)) await this.results.add({ agentId: session.agentId, result })
    return true
  }

  /** Many agents' results in one UPDATE … FROM (VALUES …), then one read of the rows for their outcomes. */
  private readonly results = new Batcher<{ agentId: string; result: AssignmentResult }>(async (items) => {
    const ms = (v: bigint) => (v > 0n ? new Date(Number(v)).toISOString() : null)
    const values = sql.join(
      items.map(({ agentId, result: r }) => {
        const file = r.fileSha256.length > 0
        return sql`(${r.assignmentId}::uuid, ${agentId}::uuid, ${statusOfResult(r)}::text, ${r.exitCode ?? null}::int, ${r.signal || null}::text,
          ${r.error ? r.error.slice(0, 2000) : null}::text, ${Number(r.lastSeq)}::bigint, ${ms(r.startedAtUnixMs)}::timestamptz,
          ${ms(r.finishedAtUnixMs) ?? this.ctx.clock().toISOString()}::timestamptz,
          ${file ? Buffer.from(r.fileSha256).toString('hex') : null}::text, ${file ? Number(r.fileSize) : null}::bigint)`
      }),
      sql`, `,
    )
    const finished = rowsOf<{ id: string }>(
      await this.ctx.db.execute(sql`
        update ${agentAssignment} a set status = v.status, exit_code = v.exit_code, signal = v.signal, error = v.error,
          last_seq = v.last_seq, started_at = coalesce(a.started_at, v.started_at), finished_at = v.finished_at,
          file_sha256 = v.file_sha256, file_size = v.file_size
        from (values ${values}) as v(id, agent_id, status, exit_code, signal, error, last_seq, started_at, finished_at, file_sha256, file_size)
        where a.id = v.id and a.agent_id = v.agent_id and a.status in ('pending', 'sent', 'running')
        returning a.id`),
    )
    if (finished.length === 0) return
    const rows = await this.ctx.db.select().from(agentAssignment).where(inArray(agentAssignment.id, finished.map((f) => f.id)))
    for (const row of rows) {
      if (row.lastSeq !== null && row.ackedSeq < row.lastSeq) {
        // Output still missing would be a protocol error; it must not block the verdict forever.
        this.ctx.log.warn({ assignmentId: row.id, ackedSeq: row.ackedSeq, lastSeq: row.lastSeq }, 'agents.result_before_output')
      }
      this.ended(row)
    }
  })

  // ---- internals -----------------------------------------------------------------------------

  /** Ends undelivered and lost assignments; runs on a timer and at start (covers a controller restart). */
  async sweep(): Promise<void> {
    const now = this.ctx.clock()
    const expired = await this.ctx.db
      .select({ id: agentAssignment.id })
      .from(agentAssignment)
      .where(and(eq(agentAssignment.status, 'pending'), lt(agentAssignment.expiresAt, now)))
    for (const { id } of expired) await this.finish(id, 'undelivered', { error: 'the agent was not connected before the assignment expired' }, ['pending'])
    const silentSince = new Date(now.getTime() - this.opts.lostGraceMs)
    const lost = await this.ctx.db
      .select({ id: agentAssignment.id, agentId: agentAssignment.agentId })
      .from(agentAssignment)
      .innerJoin(agent, eq(agent.id, agentAssignment.agentId))
      .where(and(inArray(agentAssignment.status, ['sent', 'running']), or(isNull(agent.lastSeenAt), lt(agent.lastSeenAt, silentSince))))
    for (const { id, agentId } of lost) {
      if (this.registry.get(agentId)) continue
      await this.finish(id, 'agent_lost', { error: 'the agent disconnected and did not come back within the grace period' }, ['sent', 'running'])
    }
  }

  private async markLost(agentId: string): Promise<void> {
    const rows = await this.ctx.db
      .select({ id: agentAssignment.id })
      .from(agentAssignment)
      .where(and(eq(agentAssignment.agentId, agentId), inArray(agentAssignment.status, ['sent', 'running'])))
    for (const { id } of rows) {
      await this.finish(id, 'agent_lost', { error: 'the agent disconnected and did not come back within the grace period' }, ['sent', 'running'])
    }
  }

  /** Writes an assignment (and a file's content) on a session, once per session; false if it was written there already. */
  async deliver(session: AgentSession, row: Pick<AgentAssignmentRow, 'id' | 'status' | 'signed' | 'signature' | 'keyId'>): Promise<boolean> {
    if (session.delivered.has(row.id)) return false // a second copy would only be refused as a replay
    session.delivered.add(row.id)
    await session.send(frame({ case: 'assignment', value: { assignment: row.signed, signature: row.signature, keyId: row.keyId } }))
    const content = this.content.get(row.id)
    if (content) {
      for (let offset = 0; offset < content.length || offset === 0; offset += FILE_CHUNK_BYTES) {
        const data = content.subarray(offset, offset + FILE_CHUNK_BYTES)
        const last = offset + FILE_CHUNK_BYTES >= content.length
        await session.send(frame({ case: 'fileChunk', value: { assignmentId: row.id, offset: BigInt(offset), data, last } }))
        if (last) break
      }
    }
    if (row.status === 'pending') {
      const sentAt = this.ctx.clock()
      const updated = await this.ctx.db
        .update(agentAssignment)
        .set({ status: 'sent', sentAt })
        .where(and(eq(agentAssignment.id, row.id), eq(agentAssignment.status, 'pending')))
        .returning({ id: agentAssignment.id })
      if (updated.length) this.events.emit(row.id, { type: 'status', status: 'sent', at: sentAt })
    }
    return true
  }

  /** Moves an assignment to a final status if it is still in one of `from`; emits `finished` once. */
  private async finish(
    id: string,
    status: AssignmentStatus,
    fields: PgUpdateSetSource<typeof agentAssignment>,
    from: AssignmentStatus[],
    agentId?: string,
  ): Promise<AgentAssignmentRow | undefined> {
    if (!isUuid(id)) return undefined
    const [row] = await this.ctx.db
      .update(agentAssignment)
      .set({ finishedAt: this.ctx.clock(), ...fields, status })
      .where(and(eq(agentAssignment.id, id), inArray(agentAssignment.status, from), agentId ? eq(agentAssignment.agentId, agentId) : undefined))
      .returning()
    if (!row) return undefined
    this.ended(row)
    return row
  }

  /** Forgets what memory held for a now-final assignment and tells its watchers. */
  private ended(row: AgentAssignmentRow): void {
    this.registry.get(row.agentId)?.delivered.delete(row.id)
    this.content.delete(row.id)
    this.output.forget(row.id)
    this.events.emit(row.id, { type: 'status', status: row.status, at: row.finishedAt! })
    this.events.emit(row.id, { type: 'finished', outcome: outcomeOf(row) })
  }

  private async idBySha(agentId: string, sha: Uint8Array): Promise<string | undefined> {
    if (sha.length !== 32) return undefined
    const rows = await this.ctx.db
      .select({ id: agentAssignment.id, signed: agentAssignment.signed })
      .from(agentAssignment)
      .where(and(eq(agentAssignment.agentId, agentId), inArray(agentAssignment.status, ['pending', 'sent'])))
    const want = Buffer.from(sha).toString('hex')
    return rows.find((r) => createHash('sha256').update(r.signed).digest('hex') === want)?.id
  }

  /** The current signing key, reloaded now and then so a rotation (by any controller) takes effect. */
  private async currentSigner(): Promise<SigningKey> {
    if (!this.signer || Date.now() - this.signer.loadedAt > SIGNING_KEY_REFRESH_MS) await this.announceKeysIfChanged()
    return this.signer!.key
  }

  /** Reloads the signing keys; when the set changed, tells every connected agent before anything is signed with a new key. */
  async announceKeysIfChanged(): Promise<void> {
    const keys = await activeSigningKeys(this.ctx.db, this.ctx.keyring)
    if (keys.length === 0) throw new AppError('UNAVAILABLE', 'no active assignment-signing key')
    const publicIds = keys.map((k) => k.keyId).join(',')
    const changed = this.signer !== undefined && this.signer.publicIds !== publicIds
    this.signer = { key: keys[0]!, publicIds, loadedAt: Date.now() }
    if (!changed) return
    const announcement = frame({ case: 'signingKey', value: { signingKeys: keys.map((k) => ({ keyId: k.keyId, publicKey: k.publicKey })) } })
    for (const session of this.registry.all()) await session.send(announcement)
    this.ctx.log.info({ keyIds: publicIds, agents: this.registry.size }, 'agents.signing_keys_announced')
  }
}

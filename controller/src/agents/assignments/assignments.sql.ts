import { sql } from 'drizzle-orm'
import { bigint, boolean, index, integer, pgTable, primaryKey, smallint, text, timestamp, uuid } from 'drizzle-orm/pg-core'
import { bytea } from '../../db/bytea.ts'
import { agent } from '../agents.sql.ts'

/** Which controller process holds an agent's live Connect stream (one row per connected agent). */
export const agentSession = pgTable('agent_session', {
  agentId: uuid('agent_id')
    .primaryKey()
    .references(() => agent.id, { onDelete: 'cascade' }),
  sessionId: uuid('session_id').notNull(),
  controllerId: uuid('controller_id').notNull(),
  peerAddress: text('peer_address'),
  connectedAt: timestamp('connected_at', { withTimezone: true }).notNull(),
})
export type AgentSessionRow = typeof agentSession.$inferSelect

export const ASSIGNMENT_STATUSES = [
  'pending', // waiting for the agent to be connected
  'sent', // written to the agent's stream
  'running', // the agent journaled it and started it
  'succeeded',
  'failed',
  'timed_out',
  'interrupted',
  'rejected', // the agent refused it (signature, expiry, replay, unsupported…)
  'agent_lost', // the agent went away and did not come back within the grace period
  'undelivered', // the agent was not connected before the assignment expired
  'cancelled', // cancelled before the agent received it
] as const
export type AssignmentStatus = (typeof ASSIGNMENT_STATUSES)[number]
export const FINAL_STATUSES: readonly AssignmentStatus[] = ['succeeded', 'failed', 'timed_out', 'interrupted', 'rejected', 'agent_lost', 'undelivered', 'cancelled']

/** One signed step for one agent, and how it ended. */
export const agentAssignment = pgTable(
  'agent_assignment',
  {
    id: uuid('id').primaryKey(),
    agentId: uuid('agent_id')
      .notNull()
      .references(() => agent.id, { onDelete: 'cascade' }),
    runId: uuid('run_id'),
    stepId: uuid('step_id'),
    /** exec | put_file | get_file */
    actionKind: text('action_kind').notNull(),
    status: text('status').$type<AssignmentStatus>().notNull(),
    /** The signed Assignment bytes, so a reconnecting agent can be sent exactly what was signed. */
    signed: bytea('signed').notNull(),
    signature: bytea('signature').notNull(),
    keyId: text('key_id').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    startedAt: timestamp('started_at', { withTimezone: true }),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    exitCode: integer('exit_code'),
    signal: text('signal'),
    error: text('error'),
    rejectReason: text('reject_reason'),
    /** Highest contiguous output seq persisted (what the controller acks). */
    ackedSeq: bigint('acked_seq', { mode: 'number' }).notNull().default(0),
    /** The agent's final seq from its result; output is complete when acked_seq reaches it. */
    lastSeq: bigint('last_seq', { mode: 'number' }),
    outputBytes: bigint('output_bytes', { mode: 'number' }).notNull().default(0),
    droppedBytes: bigint('dropped_bytes', { mode: 'number' }).notNull().default(0),
    truncated: boolean('truncated').notNull().default(false),
    fileSha256: text('file_sha256'),
    fileSize: bigint('file_size', { mode: 'number' }),
  },
  (t) => [
    index('agent_assignment_agent_idx').on(t.agentId, t.createdAt),
    index('agent_assignment_run_idx').on(t.runId),
    index('agent_assignment_open_idx')
      .on(t.status)
      .where(sql`${t.status} in ('pending', 'sent', 'running')`),
  ],
)
export type AgentAssignmentRow = typeof agentAssignment.$inferSelect

/** Output chunks exactly as the agent numbered them; (assignment, seq) makes persistence idempotent. */
export const agentOutput = pgTable(
  'agent_output',
  {
    assignmentId: uuid('assignment_id')
      .notNull()
      .references(() => agentAssignment.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    /** 1 stdout, 2 stderr, 3 pty, 4 file (OutputStream). */
    stream: smallint('stream').notNull(),
    byteOffset: bigint('byte_offset', { mode: 'number' }).notNull(),
    data: bytea('data').notNull(),
    /** Non-zero for a gap marker: the agent's spool overflowed and dropped this many bytes. */
    droppedBytes: bigint('dropped_bytes', { mode: 'number' }).notNull().default(0),
  },
  (t) => [primaryKey({ columns: [t.assignmentId, t.seq] })],
)

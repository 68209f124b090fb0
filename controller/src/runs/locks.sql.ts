import { bigint, index, pgTable, primaryKey, timestamp, uuid } from 'drizzle-orm/pg-core'

/*
 * Target locks of `lock: target` jobs. One row per target ever locked, kept (holder null when
 * free) so every change to a target's lock is serialised by that row's lock: a run takes a free
 * target only when nobody waits before it, and a release hands the target straight to the first
 * waiter in the same transaction (FIFO across controllers).
 */
export const targetLock = pgTable(
  'target_lock',
  {
    targetId: uuid('target_id').primaryKey(),
    holderRun: uuid('holder_run'),
    heldSince: timestamp('held_since', { withTimezone: true }),
  },
  (t) => [index('target_lock_holder_idx').on(t.holderRun)],
)

/** Runs waiting for a target, served in `seq` order. */
export const targetLockWait = pgTable(
  'target_lock_wait',
  {
    targetId: uuid('target_id').notNull(),
    runId: uuid('run_id').notNull(),
    seq: bigint('seq', { mode: 'number' }).generatedAlwaysAsIdentity().notNull(),
    since: timestamp('since', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.targetId, t.runId] }), index('target_lock_wait_order_idx').on(t.targetId, t.seq), index('target_lock_wait_run_idx').on(t.runId)],
)

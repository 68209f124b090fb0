import { sql } from 'drizzle-orm'
import { appendAudit, type AuditEntry, type AuditEvent } from '../audit/service.ts'
import type { AppContext } from '../context.ts'
import { isUuid, uuidArray, type Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import type { ScheduleRow } from '../scheduler/scheduler.sql.ts'
import { resolveSelector } from '../selectors/compile.ts'
import type { Message } from './channels/types.ts'
import { deliverToRule, forRule } from './dispatch.ts'
import type { NotificationRuleRow } from './notify.sql.ts'
import { activeRules, formatDuration, publicUrl } from './run-events.ts'
import type { MessageFields } from './templates.ts'

/*
 * Events that are not about a run — a missed schedule, an agent going offline or coming back, a
 * security alarm — go through the rules into the outbox like run events do: in the transaction
 * that records what happened (or claims the time-driven transition), under a dedupe key, so each
 * is queued exactly once however many controllers see it.
 */

export const SECURITY_EVENTS = ['security.login_lockout', 'security.refresh_token_reuse', 'security.forged_assignment'] as const

const SEVERITY: Record<string, Message['severity']> = { 'schedule.missed': 'warning', 'agent.offline': 'error', 'agent.online': 'success' }
const severityOf = (event: string) => (event.startsWith('security.') ? 'critical' : (SEVERITY[event] ?? 'info'))

/** What an event is about, for the rules' conditions (absent: a rule narrowed to it does not match). */
export interface EventMatch {
  jobId?: string
  jobTags?: string[]
  scheduleId?: string
  /** The targets the event concerns (an agent's target, the targets a missed run would have had); read only for a target_selector. */
  targetIds?: () => Promise<string[]>
}

export interface SystemEvent {
  event: string
  /** Unique to this occurrence of the event, e.g. `fire:<id>:schedule.missed`. */
  key: string
  fields: MessageFields
  match?: EventMatch
}

/** The rules listening to some events, read once for a batch of them (and the selectors they resolve). */
export class EventRules {
  private readonly selectors = new Map<string, Promise<Set<string>>>()
  private constructor(readonly rules: NotificationRuleRow[]) {}

  /** Null when no enabled rule names these events: the caller skips all the work. `security.*` names every security event. */
  static async load(db: Db, events: string[]): Promise<EventRules | null> {
    const names = new Set(events)
    if (events.some((e) => e.startsWith('security.'))) names.add('security.*')
    const rules = await activeRules(db, [...names])
    return rules.length ? new EventRules(rules) : null
  }

  listening(event: string): NotificationRuleRow[] {
    return this.rules.filter((r) => r.events.includes(event) || (event.startsWith('security.') && r.events.includes('security.*')))
  }

  /**
   * Conditions about jobs and schedules hold only for events about one; a target selector, for
   * events about targets. Conditions on a run's course (duration, only_on_change) do not apply.
   */
  async holds(db: Db, rule: NotificationRuleRow, m: EventMatch = {}): Promise<boolean> {
    const c = rule.conditions
    if (c.job_ids?.length && !(m.jobId && c.job_ids.includes(m.jobId))) return false
    if (c.schedule_ids?.length && !(m.scheduleId && c.schedule_ids.includes(m.scheduleId))) return false
    if (c.job_tags?.length && !c.job_tags.some((t) => m.jobTags?.includes(t))) return false
    if (c.target_selector) {
      const ids = (await m.targetIds?.()) ?? []
      if (!ids.length) return false
      let selected = this.selectors.get(c.target_selector)
      if (!selected) this.selectors.set(c.target_selector, (selected = resolveSelector(db, c.target_selector).then((r) => new Set(r.ids))))
      const set = await selected
      if (!ids.some((id) => set.has(id))) return false
    }
    return true
  }
}

/**
 * One event through the rules into the outbox, in the caller's transaction; returns the rows
 * queued. Each rule is delivered in a savepoint: a rule that fails (a selector that no longer
 * resolves, a bad channel) is logged and skipped, and never undoes what caused the event.
 */
export async function notifyEvent(ctx: AppContext, db: Db, e: SystemEvent, rules?: EventRules | null): Promise<number> {
  const set = rules === undefined ? await EventRules.load(db, [e.event]) : rules
  if (!set) return 0
  const fields: MessageFields = { severity: severityOf(e.event), ...e.fields, event: e.event }
  let queued = 0
  for (const rule of set.listening(e.event)) {
    queued += await forRule(ctx, db, rule, e.event, e.key, async (tx) => ((await set.holds(tx, rule, e.match)) ? deliverToRule(ctx, tx, rule, fields, { key: e.key }) : 0))
  }
  return queued
}

// ---- schedule.missed -------------------------------------------------------------------------

export interface MissedFire {
  fireId: string
  s: ScheduleRow
  fireAt: Date
  /** late: reached past the misfire limit; maintenance: a window deferred it past it; queue: it waited for capacity past it. */
  why: 'late' | 'maintenance' | 'queue'
  /** Older occurrences of a long outage that were counted, not recorded. */
  unrecorded?: number
}

const WHY = {
  late: 'the scheduler reached it too late',
  maintenance: 'a maintenance window deferred it and it could not start in time after the window',
  queue: 'it waited for a free run slot too long',
}

/**
 * Fires just recorded as missed (in the transaction that records them): one message per schedule
 * and batch, keyed by its first missed fire — a long outage is one message, not one per occurrence.
 * No rule on `schedule.missed`: one query for the whole batch, nothing else.
 */
export async function notifyMissedFires(ctx: AppContext, db: Db, missed: MissedFire[], targetIds?: (s: ScheduleRow) => Promise<string[]>): Promise<number> {
  if (!missed.length) return 0
  const rules = await EventRules.load(db, ['schedule.missed'])
  if (!rules) return 0
  const bySchedule = new Map<string, MissedFire[]>()
  for (const m of [...missed].sort((a, b) => a.fireAt.getTime() - b.fireAt.getTime())) bySchedule.set(m.s.id, [...(bySchedule.get(m.s.id) ?? []), m])
  const jobs = new Map(
    rowsOf<{ id: string; name: string; tags: string[] }>(
      await db.execute(sql`select id, name, tags from job where id = any(${uuidArray([...new Set(missed.map((m) => m.s.jobId))])})`),
    ).map((j) => [j.id, j]),
  )
  const now = ctx.clock()
  let queued = 0
  for (const fires of bySchedule.values()) {
    const { s, fireAt, fireId, why } = fires[0]!
    const last = fires.at(-1)!.fireAt
    const count = fires.length + fires.reduce((n, f) => n + (f.unrecorded ?? 0), 0)
    const job = jobs.get(s.jobId)
    const limit = formatDuration(s.misfireMaxLatenessSec * 1000)
    const detail =
      count === 1
        ? `The run of schedule ${s.name} due at ${fireAt.toISOString()} did not start: ${WHY[why]} (${formatDuration(now.getTime() - fireAt.getTime())} late; the schedule allows ${limit}).`
        : `${count} runs of schedule ${s.name} due from ${fireAt.toISOString()} to ${last.toISOString()} did not start: ${WHY[why]} (the schedule allows ${limit}).`
    queued += await notifyEvent(
      ctx,
      db,
      {
        event: 'schedule.missed',
        key: `fire:${fireId}:schedule.missed`,
        fields: {
          title: `Schedule ${s.name} missed ${count === 1 ? `its run due at ${fireAt.toISOString()}` : `${count} runs`}`,
          detail,
          status: 'missed',
          trigger: 'schedule',
          schedule_name: s.name,
          schedule_id: s.id,
          job_name: job?.name ?? '',
          job_id: s.jobId,
          fire_at: fireAt.toISOString(),
          missed_count: String(count),
          link: `${publicUrl(ctx)}/schedules/${s.id}`,
        },
        match: { jobId: s.jobId, jobTags: job?.tags ?? [], scheduleId: s.id, ...(targetIds ? { targetIds: () => targetIds(s) } : {}) },
      },
      rules,
    )
  }
  return queued
}

// ---- security.* --------------------------------------------------------------------------------

/** Refusals an agent reports that mean an assignment was not what this controller signed for it. */
const FORGED_KINDS = new Set(['bad_signature', 'unknown_key', 'wrong_agent', 'secret_tampered'])

/** The security event an audit entry raises, if any. */
export function securityEventOf(entry: Pick<AuditEntry, 'action' | 'summary'>): (typeof SECURITY_EVENTS)[number] | null {
  if (entry.action === 'auth.login_lockout') return 'security.login_lockout'
  if (entry.action === 'auth.refresh_token_reuse') return 'security.refresh_token_reuse'
  if (entry.action === 'agents.security_event' && FORGED_KINDS.has(String(entry.summary?.['kind']))) return 'security.forged_assignment'
  return null
}

/**
 * Appends an audit row; one that is a security event queues its notification in the same
 * transaction (key `audit:<id>`). Others are appended as appendAudit does, with no extra work.
 */
export async function appendAuditNotifying(ctx: AppContext, entry: AuditEntry): Promise<AuditEvent> {
  const event = securityEventOf(entry)
  if (!event) return appendAudit(ctx.db, entry, ctx.clock())
  return ctx.db.transaction(async (t) => {
    const tx = t as unknown as Db
    const row = await appendAudit(tx, entry, ctx.clock())
    const rules = await EventRules.load(tx, [event])
    if (rules) await notifyEvent(ctx, tx, await securityMessage(ctx, tx, event, row), rules)
    return row
  })
}

/** What the audit row says, in words; never a password, a token or its hash (the audit summary has none either). */
async function securityMessage(ctx: AppContext, db: Db, event: string, a: AuditEvent): Promise<SystemEvent> {
  const s = a.summary as Record<string, string | number | null | undefined>
  const from = a.client_address ? ` from ${a.client_address}` : ''
  const base = { actor: a.actor.name ?? '', source_ip: a.client_address ?? '', link: `${publicUrl(ctx)}/audit/${a.id}` }
  const key = `audit:${a.id}`
  if (event === 'security.login_lockout') {
    const who = s['scope'] === 'address' ? `sign-ins from ${a.client_address ?? 'an address'}` : `sign-in as ${s['username'] ?? a.actor.name}`
    return {
      event,
      key,
      fields: {
        ...base,
        actor: String(s['username'] ?? a.actor.name ?? ''),
        title: `Security: ${who} locked after ${s['failures']} failed attempts`,
        detail: `${s['failures']} failed sign-ins${s['scope'] === 'address' ? '' : ` as ${s['username']}`}${from}: further attempts are refused until ${s['locked_until']}.`,
      },
    }
  }
  if (event === 'security.refresh_token_reuse') {
    const [user] = a.actor.id && isUuid(a.actor.id) ? rowsOf<{ username: string }>(await db.execute(sql`select username from app_user where id = ${a.actor.id}::uuid`)) : []
    const name = user?.username ?? a.actor.id ?? 'a user'
    return {
      event,
      key,
      fields: {
        ...base,
        actor: name,
        title: `Security: a refresh token of ${name} was used twice`,
        detail: `A refresh token of ${name}'s session ${a.resource.id ?? ''} was presented again after it had been used${from}: it was copied. Every token of that session was revoked.`,
      },
    }
  }
  const [agent] = a.actor.id && isUuid(a.actor.id) ? rowsOf<{ hostname: string; target_id: string | null }>(await db.execute(sql`select hostname, target_id from agent where id = ${a.actor.id}::uuid`)) : []
  const name = a.actor.name ?? a.actor.id ?? 'an agent'
  return {
    event,
    key,
    fields: {
      ...base,
      agent_name: name,
      agent_id: a.actor.id ?? '',
      hostname: agent?.hostname ?? '',
      title: `Security: agent ${name} refused a forged assignment (${s['kind']})`,
      detail: `Agent ${name}${from} refused assignment ${s['assignment_id'] ?? '(no id)'}: ${s['kind']}${s['detail'] ? ` (${String(s['detail']).slice(0, 300)})` : ''}. It did not run.`,
    },
    match: { targetIds: async () => (agent?.target_id ? [agent.target_id] : []) },
  }
}

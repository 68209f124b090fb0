import { and, eq, inArray, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { appUser } from '../users/users.sql.ts'
import { driverFor } from './channels/index.ts'
import type { Message } from './channels/types.ts'
import { notificationChannel, notificationPreference, type NotificationChannelRow, type NotificationRuleRow } from './notify.sql.ts'
import { acceptsEvent, quietUntil, type PreferenceRow } from './preferences.ts'
import { enqueueNotification } from './outbox.ts'
import { renderMessage, type MessageFields } from './templates.ts'

/*
 * A rule's message for one event: rendered once from the rule's template, shaped by each channel
 * type, and written to the outbox per channel (its own destination) and per user (by email) with
 * a key that makes the same event never queue the same message twice. Users' preferences apply.
 */

export function messageOf(rule: Pick<NotificationRuleRow, 'template'>, fields: MessageFields): Message {
  const { subject, text } = renderMessage(rule.template, fields)
  const facts = [
    ['Job', fields.job_name],
    ['Status', fields.status],
    ['Duration', fields.duration],
    ['Targets', fields.target_count && `${fields.target_count} (${fields.failed_count ?? 0} failed)`],
    ['Failed targets', fields.failed_targets],
    ['Step', fields.step_name?.replace(/^ \(step (.*)\)$/, '$1')],
    ['Schedule', fields.schedule_name],
    ['Due at', fields.fire_at],
    ['Agent', fields.agent_name],
    ['Host', fields.hostname],
    ['Last seen', fields.last_seen_at],
    ['Actor', fields.actor],
    ['Source IP', fields.source_ip],
  ]
    .filter((f): f is [string, string] => typeof f[1] === 'string' && f[1] !== '')
    .map(([label, value]) => ({ label, value }))
  return {
    event: fields.event ?? 'test',
    severity: (fields.severity as Message['severity']) ?? 'info',
    subject,
    text,
    ...(fields.link ? { link: fields.link } : {}),
    facts,
    data: Object.fromEntries(Object.entries(fields).filter(([k, v]) => v !== '' && k !== 'output_tail' && k !== 'escalation')),
  }
}

type Rule = Pick<NotificationRuleRow, 'id' | 'template' | 'channelIds' | 'userIds'> & { critical?: boolean }
type Addressee = { id: string; email: string | null; pref: PreferenceRow | null }

/**
 * Queues the rule's message on its channels and for its users; returns how many rows were new.
 * A user gets it on the channels they accept (by default email to their address), deferred to the
 * end of their quiet hours or held for their digest — unless the message is critical.
 */
export async function deliverToRule(ctx: AppContext, db: Db, rule: Rule, fields: MessageFields, at: { key: string; runId?: string }): Promise<number> {
  const channels = await liveChannels(db, rule.channelIds)
  const message = messageOf(rule, fields)
  const critical = rule.critical === true || message.severity === 'critical'
  const now = ctx.clock()
  let queued = 0
  const put = async (channel: NotificationChannelRow, recipient: string | null, user?: Addressee) => {
    const driver = driverFor(channel.type)
    if (!driver) return
    const held = !critical && !!user?.pref?.digestMinutes
    // A held message keeps the unshaped message: the digest is what gets shaped for the channel.
    const shaped = held ? { subject: message.subject, payload: { message } } : driver.render(channel, message)
    const notBefore = critical || held ? null : quietUntil(user?.pref ?? undefined, now)
    const id = await enqueueNotification(db, {
      channelId: channel.id,
      event: message.event,
      dedupeKey: `${at.key}:rule:${rule.id}:channel:${channel.id}:to:${user ? `user:${user.id}` : '-'}`,
      recipient,
      subject: shaped.subject,
      payload: recipient && !held ? { ...shaped.payload, to: [recipient] } : shaped.payload,
      runId: at.runId ?? null,
      ruleId: rule.id,
      maxAttempts: ctx.config.OPSC_NOTIFY_MAX_ATTEMPTS,
      userId: user?.id ?? null,
      held,
      ...(notBefore ? { notBefore } : {}),
    })
    if (id) queued++
  }
  for (const channel of channels) await put(channel, null)
  if (!rule.userIds.length) return queued
  const users = (await addressees(db, rule.userIds)).filter((u) => acceptsEvent(u.pref?.events ?? null, message.event))
  const chosen = await liveChannels(db, [...new Set(users.flatMap((u) => u.pref?.channelIds ?? []))])
  let email = channels.find((c) => c.type === 'email')
  for (const user of users) {
    const accepted = user.pref?.channelIds ? chosen.filter((c) => user.pref!.channelIds!.includes(c.id)) : [(email ??= await defaultEmailChannel(db))].filter((c) => !!c)
    for (const channel of accepted) {
      if (channel.type !== 'email') await put(channel, null, user)
      else if (user.email) await put(channel, user.email, user)
    }
  }
  return queued
}

/**
 * One rule's share of an event, in a savepoint of the event's transaction: a rule that fails (a
 * selector naming a deleted group, a bad channel) is logged and skipped, and never undoes the
 * event that raised it (a run's end, a fire, an audit record).
 */
export async function forRule(ctx: AppContext, db: Db, rule: { id: string }, event: string, key: string, work: (tx: Db) => Promise<number>): Promise<number> {
  try {
    return await db.transaction((sp) => work(sp as unknown as Db))
  } catch (err) {
    ctx.log.warn({ err, ruleId: rule.id, event, key }, 'notify.event_failed')
    return 0
  }
}

async function liveChannels(db: Db, ids: string[]): Promise<NotificationChannelRow[]> {
  if (!ids.length) return []
  return db.select().from(notificationChannel).where(and(inArray(notificationChannel.id, ids), isNull(notificationChannel.deletedAt)))
}

/** Enabled users with their preferences (null: the defaults). */
async function addressees(db: Db, ids: string[]): Promise<Addressee[]> {
  return db
    .select({ id: appUser.id, email: appUser.email, pref: notificationPreference })
    .from(appUser)
    .leftJoin(notificationPreference, eq(notificationPreference.userId, appUser.id))
    .where(sql`${appUser.id} = any(${uuidArray(ids)}) and not ${appUser.disabled}`)
}

/** Users named by a rule without an email channel of its own get mail through the first one configured. */
async function defaultEmailChannel(db: Db): Promise<NotificationChannelRow | undefined> {
  const [row] = await db
    .select()
    .from(notificationChannel)
    .where(and(sql`${notificationChannel.type} = 'email'`, isNull(notificationChannel.deletedAt)))
    .orderBy(sql`lower(${notificationChannel.name})`)
    .limit(1)
  return row
}

import { and, inArray, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../context.ts'
import { uuidArray, type Db } from '../db/client.ts'
import { appUser } from '../users/users.sql.ts'
import { driverFor } from './channels/index.ts'
import type { Message } from './channels/types.ts'
import { notificationChannel, type NotificationChannelRow, type NotificationRuleRow } from './notify.sql.ts'
import { enqueueNotification } from './outbox.ts'
import { renderMessage, type MessageFields } from './templates.ts'

/*
 * A rule's message for one event: rendered once from the rule's template, shaped by each channel
 * type, and written to the outbox per channel (its own destination) and per user (by email) with
 * a key that makes the same event never queue the same message twice.
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

/** Queues the rule's message on its channels and for its users; returns how many rows were new. */
export async function deliverToRule(
  _ctx: AppContext,
  db: Db,
  rule: Pick<NotificationRuleRow, 'id' | 'template' | 'channelIds' | 'userIds'>,
  fields: MessageFields,
  at: { key: string; runId?: string },
): Promise<number> {
  const channels = rule.channelIds.length
    ? await db.select().from(notificationChannel).where(and(inArray(notificationChannel.id, rule.channelIds), isNull(notificationChannel.deletedAt)))
    : []
  const message = messageOf(rule, fields)
  let queued = 0
  const put = async (channel: NotificationChannelRow, recipient: string | null) => {
    const driver = driverFor(channel.type)
    if (!driver) return
    const shaped = driver.render(channel, message)
    const payload = recipient ? { ...shaped.payload, to: [recipient] } : shaped.payload
    const fresh = await enqueueNotification(db, {
      channelId: channel.id,
      event: message.event,
      dedupeKey: `${at.key}:rule:${rule.id}:channel:${channel.id}:to:${recipient ?? '-'}`,
      recipient,
      subject: shaped.subject,
      payload,
      runId: at.runId ?? null,
      ruleId: rule.id,
    })
    if (fresh) queued++
  }
  for (const channel of channels) await put(channel, null)
  if (rule.userIds.length) {
    const email = channels.find((c) => c.type === 'email') ?? (await defaultEmailChannel(db))
    if (email) {
      const users = await db.select({ email: appUser.email }).from(appUser).where(sql`${appUser.id} = any(${uuidArray(rule.userIds)}) and ${appUser.email} is not null`)
      for (const u of users) await put(email, u.email!)
    }
  }
  return queued
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

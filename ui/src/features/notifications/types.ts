import type { api, Ok } from '../../api.ts'
import type { MESSAGE_FIELDS } from '../../../../controller/src/notify/templates.ts'
import type { NOTIFY_EVENTS } from '../../../../controller/src/notify/rules-service.ts'

/* The shapes the notifications API answers with, taken from its route types. */

type Body<F extends (...args: never[]) => unknown> = Ok<Awaited<ReturnType<F>>>

export type ChannelList = Body<(typeof api)['notification-channels']['$get']>
export type Channel = Body<(typeof api)['notification-channels'][':id']['$get']>
export type ChannelType = Channel['type']
export type Directory = Body<(typeof api)['notification-channels']['directory']['$get']>
export type DirectoryEntry = Directory['items'][number]
export type TestResult = Body<(typeof api)['notification-channels'][':id']['test']['$post']>
export type SmtpSettings = Body<typeof api.notification.smtp.settings.$get>
export type SmtpTestResult = Body<typeof api.notification.smtp.test.$post>
export type RuleList = Body<(typeof api)['notification-rules']['$get']>
export type Rule = Body<(typeof api)['notification-rules'][':id']['$get']>
export type RulePreview = Body<(typeof api)['notification-rules']['preview']['$post']>
export type NotificationPage = Body<typeof api.notifications.$get>
export type Notification = NotificationPage['items'][number]
export type OutboxStatus = Body<typeof api.notification.status.$get>
export type Preferences = Body<(typeof api.notification.preferences)[':user_id']['$get']>
export type RunList = Body<typeof api.runs.$get>
export type UserList = Body<typeof api.users.$get>
export type ScheduleList = Body<typeof api.schedules.$get>
export type JobList = Body<typeof api.jobs.$get>
export type NotifyEvent = (typeof NOTIFY_EVENTS)[number]
export type MessageField = (typeof MESSAGE_FIELDS)[number]

import type { ChannelType, MessageField, NotifyEvent } from './types.ts'

/* Words for the API's closed sets; each map is complete (the compiler checks it against the server's lists). */

export const EVENTS: Record<NotifyEvent, string> = {
  'run.failed': 'Run failed',
  'run.timed_out': 'Run timed out',
  'run.succeeded': 'Run succeeded',
  'run.finished': 'Run finished (any outcome)',
  'step.failed': 'Step failed',
  'schedule.missed': 'Schedule missed a fire',
  'agent.offline': 'Agent went offline',
  'agent.online': 'Agent came back online',
  'security.*': 'Every security event',
  'security.login_lockout': 'Login lockout',
  'security.refresh_token_reuse': 'Refresh token reused',
  'security.forged_assignment': 'Forged assignment refused',
}
export const EVENT_IDS = Object.keys(EVENTS) as NotifyEvent[]

export const CHANNEL_TYPES: Record<ChannelType, string> = {
  email: 'Email',
  slack: 'Slack',
  teams: 'Microsoft Teams',
  webhook: 'Webhook',
}

export const FIELDS: Record<MessageField, string> = {
  event: 'event name',
  severity: 'critical, error, warning, info, success',
  title: 'one-line summary',
  detail: 'what happened (non-run events)',
  job_name: 'job',
  job_id: 'job id',
  run_id: 'run id',
  status: 'run status',
  trigger: 'manual, schedule, …',
  requested_by: 'who started it',
  started_at: 'start time',
  finished_at: 'end time',
  duration: 'e.g. 2m 5s',
  duration_sec: 'seconds',
  target_count: 'targets',
  failed_count: 'failed targets',
  failed_targets: 'their names',
  step_name: 'failed step',
  target_name: 'failed target',
  error: 'error message',
  output_tail: 'last output lines',
  link: 'link to the run',
  escalation: 'escalation prefix',
  schedule_name: 'schedule',
  schedule_id: 'schedule id',
  fire_at: 'missed fire time',
  missed_count: 'missed fires',
  agent_name: 'agent',
  agent_id: 'agent id',
  hostname: 'agent host',
  last_seen_at: 'agent last seen',
  actor: 'user (security events)',
  source_ip: 'source address',
}

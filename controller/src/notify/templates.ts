import { checkTemplate, renderTemplate, templateReferences } from '../jobs/template.ts'

/*
 * Notification subjects and bodies are written in the jobs' template language — the same parser,
 * the same filters, nothing that runs code — over the event's fields, which templates read as
 * plain names (`{{ job_name }}`, `{{ failed_targets }}`). Output in them is what was stored:
 * secrets were masked before it was.
 */

/** Every field an event offers a template (absent ones render empty). */
export const MESSAGE_FIELDS = [
  'event',
  'severity',
  'job_name',
  'job_id',
  'run_id',
  'status',
  'trigger',
  'requested_by',
  'started_at',
  'finished_at',
  'duration',
  'duration_sec',
  'target_count',
  'failed_count',
  'failed_targets',
  'step_name',
  'target_name',
  'error',
  'output_tail',
  'link',
  'escalation',
  // Events that are not about a run (schedules, agents, security) say what happened in these two.
  'title',
  'detail',
  'schedule_name',
  'schedule_id',
  'fire_at',
  'missed_count',
  'agent_name',
  'agent_id',
  'hostname',
  'last_seen_at',
  'actor',
  'source_ip',
] as const
export type MessageField = (typeof MESSAGE_FIELDS)[number]
export type MessageFields = Partial<Record<MessageField, string>>

/** A run's title is `<job>: <status>[ (step …)]`; other events bring their own. */
export const DEFAULT_SUBJECT = '{{ escalation }}{{ title }}'
export const DEFAULT_BODY = `Job: {{ job_name }}
Status: {{ status }}
Duration: {{ duration }}
Targets: {{ target_count }} ({{ failed_count }} failed)
Failed targets: {{ failed_targets | default "none" }}
{{ error }}
Run: {{ link }}

{{ output_tail }}`
export const DEFAULT_EVENT_BODY = `{{ detail }}

{{ link }}`

const isRunEvent = (event: string | undefined) => !event || event.startsWith('run.') || event.startsWith('step.')

const known = { params: new Set<string>(MESSAGE_FIELDS), earlierSteps: new Set<string>(), noTarget: true }

/** Problems with a template (unknown names, bad syntax): what a 400 lists. */
export function templateProblems(source: string): string[] {
  const problems = checkTemplate(source, known)
  if (problems.length) return problems
  // A notification reads the event's fields only: never a credential, a target or a step.
  const other = templateReferences(source).filter((r) => r.kind !== 'param')
  return other.map((r) => (r.kind === 'secret' ? 'a notification template cannot read secrets' : `a notification template reads event fields only, not ${r.kind}s`))
}

export function renderMessage(template: { subject?: string | undefined; body?: string | undefined } | null, fields: MessageFields): { subject: string; text: string } {
  const run = isRunEvent(fields.event)
  const title = fields.title ?? (run ? `${fields.job_name ?? ''}: ${fields.status ?? ''}${fields.step_name ?? ''}` : '')
  const params = Object.fromEntries(MESSAGE_FIELDS.map((f) => [f, (f === 'title' ? title : fields[f]) ?? '']))
  const scope = { params, target: null, steps: {}, secrets: {} }
  const subject = renderTemplate(template?.subject ?? DEFAULT_SUBJECT, scope).replace(/\s+/g, ' ').trim()
  // Blank lines left by empty fields collapse to one.
  const text = renderTemplate(template?.body ?? (run ? DEFAULT_BODY : DEFAULT_EVENT_BODY), scope)
    .replace(/\n{3,}/g, '\n\n')
    .trim()
  return { subject: subject.slice(0, 250), text }
}

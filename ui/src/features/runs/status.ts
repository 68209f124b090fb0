// Presentation rules for runs: status tones and labels, durations, times. No Solid, no DOM.
import type { RunStatus, RunTrigger } from '../../../../controller/src/runs/runs.sql.ts'
import type { Tone } from '../../components/badge.tsx'

export type { RunStatus, RunTrigger }

export const RUN_STATUS_OPTIONS: readonly RunStatus[] = ['queued', 'running', 'succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'agent_lost', 'interrupted', 'system_error']
export const RUN_TRIGGER_OPTIONS: readonly RunTrigger[] = ['manual', 'retry', 'schedule', 'dependency']

export function isActive(status: RunStatus | null | undefined): boolean {
  return status === 'queued' || status === 'running'
}

export function statusTone(status: RunStatus | null | undefined): Tone {
  switch (status) {
    case 'succeeded':
      return 'good'
    case 'failed':
    case 'timed_out':
    case 'agent_lost':
    case 'interrupted':
    case 'system_error':
      return 'bad'
    case 'running':
      return 'active'
    case 'queued':
    case 'cancelled':
    case 'skipped':
    case null:
    case undefined:
      return 'neutral'
    default:
      return assertNever(status)
  }
}

/** `timed_out` → "timed out". */
export function statusLabel(status: RunStatus | null | undefined): string {
  return status ? status.replace(/_/g, ' ') : 'unknown'
}

const TRIGGER_LABELS: Record<RunTrigger, string> = { manual: 'Manual', retry: 'Retry', schedule: 'Schedule', dependency: 'Dependency' }
export const triggerLabel = (t: RunTrigger) => TRIGGER_LABELS[t] ?? t

/** A run that ended with something to retry (the API refuses a retry when every target succeeded). */
export function canRetry(status: RunStatus): boolean {
  return !isActive(status) && status !== 'succeeded' && status !== 'skipped'
}

/** "350 ms", "12.4 s", "3m 05s", "2h 04m", "3d 4h". */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—'
  if (ms < 0) ms = 0
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`
  const s = Math.floor(ms / 1000)
  const pad = (n: number) => String(n).padStart(2, '0')
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`
  if (s < 86_400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`
  return `${Math.floor(s / 86_400)}d ${Math.floor((s % 86_400) / 3600)}h`
}

/** A run's duration: finished − started, or still counting against `now` while it runs. */
export function runDuration(r: { started_at: string | null; finished_at: string | null }, now: number): number | null {
  if (!r.started_at) return null
  const end = r.finished_at ? Date.parse(r.finished_at) : now
  return end - Date.parse(r.started_at)
}

export const shortId = (id: string) => id.slice(0, 8)

function assertNever(value: never): never {
  throw new Error(`unexpected value: ${String(value)}`)
}

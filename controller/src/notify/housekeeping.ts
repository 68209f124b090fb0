import type { AppContext } from '../context.ts'
import { trackAgentPresence } from './agent-presence.ts'
import { sendDueDigests } from './digest.ts'
import { pruneNotifications } from './retention.ts'
import { sendDueEscalations } from './run-events.ts'

/*
 * Notification work that is due by time rather than caused by a transaction: escalations, digests,
 * agent presence changes. Every controller runs these passes; each pass claims its rows (SKIP LOCKED
 * or a conditional update), so a message is produced once however many controllers run.
 */

export const HOUSEKEEPING_POLL_MS = 15_000

interface Pass {
  name: string
  run: (ctx: AppContext) => Promise<unknown>
  /** Runs at most this often (default: every round). */
  everyMs?: number
}

const PASSES: Pass[] = [
  { name: 'escalations', run: (ctx) => sendDueEscalations(ctx) },
  { name: 'digests', run: (ctx) => sendDueDigests(ctx) },
  { name: 'agent_presence', run: (ctx) => trackAgentPresence(ctx) },
  { name: 'retention', run: (ctx) => pruneNotifications(ctx), everyMs: 3_600_000 },
]
const lastRun = new WeakMap<AppContext, Map<string, number>>()

/** One round of every pass (tests call this directly); a failing pass is logged, the others still run. */
export async function runNotifyHousekeeping(ctx: AppContext): Promise<void> {
  const last = lastRun.get(ctx) ?? new Map<string, number>()
  lastRun.set(ctx, last)
  for (const pass of PASSES) {
    if (pass.everyMs && Date.now() - (last.get(pass.name) ?? 0) < pass.everyMs) continue
    last.set(pass.name, Date.now())
    try {
      await pass.run(ctx)
    } catch (err) {
      ctx.log.warn({ err, pass: pass.name }, 'notify.housekeeping_failed')
    }
  }
}

export function startNotifyHousekeeping(ctx: AppContext): NodeJS.Timeout {
  let busy = false
  const timer = setInterval(() => {
    if (busy) return
    busy = true
    void runNotifyHousekeeping(ctx).finally(() => (busy = false))
  }, HOUSEKEEPING_POLL_MS)
  timer.unref()
  return timer
}

import { sql } from 'drizzle-orm'
import { ConfigError } from '../config.ts'
import type { Db } from '../db/client.ts'
import { rowsOf } from '../db/migrate.ts'
import type { Logger } from '../log.ts'
import { controllerAlive } from '../system/service.ts'

/** The setting that records the CA the enrolled agents pin (the one every controller must present). */
export const AGENT_CA_SETTING = 'tls.agent_ca_fingerprint'

/**
 * Several controllers on one database serve the same agents, and an agent trusts exactly the CA it
 * pinned at enrolment: every controller must present that CA. The first controller records its CA's
 * fingerprint; a controller that presents another one while others that present the recorded one
 * are running and agents are enrolled is misconfigured, and does not start. Alone, a different CA is
 * taken as a deliberate replacement: recorded, with a warning that the enrolled agents must enrol
 * again. Called before this controller registers itself (so "running" means the others).
 */
export async function checkSharedCa(db: Db, fingerprint: string, log?: Logger): Promise<void> {
  await db.execute(sql`insert into setting (key, value, updated_by) values (${AGENT_CA_SETTING}, ${JSON.stringify(fingerprint)}::jsonb, 'controller') on conflict (key) do nothing`)
  const [row] = rowsOf<{ value: unknown }>(await db.execute(sql`select value from setting where key = ${AGENT_CA_SETTING}`))
  const recorded = typeof row?.value === 'string' ? row.value : undefined
  if (recorded === fingerprint) return
  const [counts] = rowsOf<{ agents: number; controllers: number }>(
    await db.execute(sql`select
      (select count(*)::int from agent where revoked_at is null) as agents,
      (select count(*)::int from controller_node n where ${controllerAlive('n')}) as controllers`),
  )
  const agents = Number(counts?.agents ?? 0)
  const running = Number(counts?.controllers ?? 0)
  if (agents > 0 && running > 0) {
    throw new ConfigError(
      `TLS: this controller presents the CA ${fingerprint}, but the ${running} other controller(s) running on this database present ${recorded}, ` +
        `the CA the ${agents} enrolled agent(s) pinned. Every controller of one installation must present the same CA: copy tls/ca.crt and tls/ca.key ` +
        `from another controller's data dir into this one's (or give every controller the same OPSC_TLS_CERT chain), then start it again (docs/ha.md)`,
    )
  }
  await db.execute(sql`update setting set value = ${JSON.stringify(fingerprint)}::jsonb, updated_at = now(), updated_by = 'controller' where key = ${AGENT_CA_SETTING}`)
  if (agents > 0) {
    const hint = 'the enrolled agents pinned the previous CA: they cannot connect until they enrol again (or the previous CA is restored)'
    log?.warn({ fingerprint, previous: recorded, agents, hint }, 'tls.agent_ca_replaced')
  } else if (recorded) log?.info({ fingerprint, previous: recorded }, 'tls.agent_ca_recorded')
}

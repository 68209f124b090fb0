import { hostname } from 'node:os'
import { eq, sql, type SQL } from 'drizzle-orm'
import type { Db } from '../db/client.ts'
import { controllerNode, installation } from './system.sql.ts'

/** The installation id, created by whichever controller starts first (the singleton constraint settles races). */
export async function ensureInstallation(db: Db): Promise<string> {
  await db.insert(installation).values({}).onConflictDoNothing({ target: installation.singleton })
  const [row] = await db.select({ id: installation.id }).from(installation).limit(1)
  return row!.id
}

export interface NodeRegistration {
  id: string
  version: string
  httpPort: number
  grpcPort: number
}

/**
 * A controller counts as alive while it has not stopped and its heartbeat is this recent: work for
 * its agents stays with it, a new controller's CA is checked against it, /metrics counts it.
 */
export const CONTROLLER_ALIVE_SECONDS = 45

/** The condition "this controller_node row is alive", for a row of that table under `alias`. */
export function controllerAlive(alias: string): SQL {
  const n = sql.identifier(alias)
  return sql`(${n}.stopped_at is null and ${n}.last_seen_at > now() - make_interval(secs => ${CONTROLLER_ALIVE_SECONDS}))`
}

export async function registerControllerNode(db: Db, node: NodeRegistration): Promise<void> {
  await db.insert(controllerNode).values({ ...node, hostname: hostname(), pid: process.pid })
}

export async function heartbeatControllerNode(db: Db, id: string, now: Date): Promise<void> {
  await db.update(controllerNode).set({ lastSeenAt: now }).where(eq(controllerNode.id, id))
}

export async function markControllerNodeStopped(db: Db, id: string, now: Date): Promise<void> {
  await db.update(controllerNode).set({ stoppedAt: now, lastSeenAt: now }).where(eq(controllerNode.id, id))
}

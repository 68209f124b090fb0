import { randomBytes } from 'node:crypto'
import mysql from 'mysql2/promise'

/**
 * The MariaDB/MySQL server on this machine (and CI): 127.0.0.1:3306, root with an empty password.
 * createMariadbDatabase() makes a throw-away database and a user with a password (for '%' and
 * 'localhost') that may do anything in it; drop() ends that user's connections and removes both.
 */

export const MARIADB_ADMIN = { host: '127.0.0.1', port: 3306, user: 'root', password: '' } as const

export interface TestMariadbDatabase {
  host: '127.0.0.1'
  port: number
  database: string
  user: string
  password: string
  /** A root connection (open until drop()). */
  admin: mysql.Connection
  drop(): Promise<void>
}

/** Why MariaDB cannot be used here, or undefined when root can connect. */
export async function mariadbUnavailable(): Promise<string | undefined> {
  try {
    const conn = await mysql.createConnection({ ...MARIADB_ADMIN, connectTimeout: 3000 })
    await conn.end()
    return undefined
  } catch (err) {
    return `MariaDB/MySQL not reachable as root on 127.0.0.1:3306 (${(err as Error).message})`
  }
}

/** Names default to `opsc_<random>` (letters, digits and _ only: they are not quoted). */
export async function createMariadbDatabase(opts: { database?: string; user?: string; password?: string } = {}): Promise<TestMariadbDatabase> {
  const suffix = randomBytes(4).toString('hex')
  const database = opts.database ?? `opsc_${suffix}`
  const user = opts.user ?? `opsc_${suffix}`
  const password = opts.password ?? `pw-${randomBytes(8).toString('hex')}`
  for (const name of [database, user]) if (!/^\w+$/.test(name)) throw new Error(`unsafe MariaDB name ${name}`)
  const admin = await mysql.createConnection(MARIADB_ADMIN)
  const hosts = ['%', 'localhost']
  await admin.query(`create database ${database}`)
  for (const host of hosts) {
    await admin.query(`create user '${user}'@'${host}' identified by ?`, [password])
    await admin.query(`grant all on ${database}.* to '${user}'@'${host}'`)
  }
  let dropped = false
  return {
    host: '127.0.0.1',
    port: MARIADB_ADMIN.port,
    database,
    user,
    password,
    admin,
    async drop() {
      if (dropped) return
      dropped = true
      // A connection left in a transaction would hold a metadata lock that blocks the drop.
      const [procs] = await admin.query(`select id from information_schema.processlist where user = ?`, [user])
      for (const { id } of procs as { id: number }[]) await admin.query(`kill ${Number(id)}`).catch(() => {})
      await admin.query(`drop database if exists ${database}`)
      for (const host of hosts) await admin.query(`drop user if exists '${user}'@'${host}'`)
      await admin.end()
    },
  }
}

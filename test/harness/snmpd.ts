import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import snmp from 'net-snmp'

/**
 * A real Net-SNMP agent: `snmpd` (Debian package snmpd) in the foreground on a free UDP port of
 * 127.0.0.1, with its own config and persistent directory (never the system service or
 * /var/lib/snmp), a random v2c read-only community, sysName/sysLocation set, and three v3 users
 * (authPriv: sha/aes, md5/aes, sha/des). stop() kills it and removes its temp dir.
 */

export interface SnmpV3User {
  user: string
  authProtocol: 'sha' | 'md5'
  auth: string
  privProtocol: 'aes' | 'des'
  priv: string
}

export interface TestSnmpd {
  host: '127.0.0.1'
  port: number
  /** The v2c read-only community (random per start). */
  community: string
  sysName: string
  sysLocation: string
  v3: { sha: SnmpV3User; md5: SnmpV3User; des: SnmpV3User }
  /** snmpd's stdout and stderr so far. */
  log(): string
  stop(): Promise<void>
}

export const SNMP_SYS_NAME_OID = '1.3.6.1.2.1.1.5.0'
export const SNMP_SYS_LOCATION_OID = '1.3.6.1.2.1.1.6.0'

function findSnmpd(): string | undefined {
  for (const candidate of ['snmpd', '/usr/sbin/snmpd']) {
    if (spawnSync(candidate, ['-v'], { stdio: 'ignore' }).error === undefined) return candidate
  }
  return undefined
}

/** Why a real snmpd cannot run here, or undefined when it can. */
export function snmpdUnavailable(): string | undefined {
  return findSnmpd() ? undefined : 'snmpd is not installed (apt-get install snmpd)'
}

/** A UDP port of 127.0.0.1 nothing is bound to right now. */
export async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4')
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  const { port } = socket.address()
  await new Promise<void>((r) => socket.close(() => r()))
  return port
}

/** One v2c GET of sysName; true when the agent answered. */
function probe(port: number, community: string): Promise<boolean> {
  return new Promise((resolve) => {
    const session = snmp.createSession('127.0.0.1', community, { port, version: snmp.Version2c, timeout: 200, retries: 0 })
    session.on('error', () => {})
    session.get([SNMP_SYS_NAME_OID], (err) => {
      session.close()
      resolve(!err)
    })
  })
}

export async function startSnmpd(): Promise<TestSnmpd> {
  const binary = findSnmpd()
  if (!binary) throw new Error(snmpdUnavailable())
  const community = `opsc-ro-${randomBytes(4).toString('hex')}`
  const sysName = 'opsc-snmp-test'
  const sysLocation = 'Rack 7, Test Lab'
  const v3 = {
    sha: { user: 'opsc-v3', authProtocol: 'sha', auth: 'auth-pass-7f2c', privProtocol: 'aes', priv: 'priv-pass-91ab' },
    md5: { user: 'opsc-md5', authProtocol: 'md5', auth: 'md5-pass-3c4d', privProtocol: 'aes', priv: 'aes-pass-5e6f' },
    des: { user: 'opsc-des', authProtocol: 'sha', auth: 'sha-pass-8a9b', privProtocol: 'des', priv: 'des-pass-0c1d' },
  } satisfies TestSnmpd['v3']

  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-snmpd-'))
  const conf = path.join(dir, 'snmpd.conf')
  const users = Object.values(v3)
  writeFileSync(
    conf,
    [
      `sysName ${sysName}`,
      `sysLocation ${sysLocation}`,
      'sysContact ops@example.test',
      `rocommunity ${community} 127.0.0.1`,
      // createUser is read at start and stored (localised) in the persistent directory below.
      ...users.map((u) => `createUser ${u.user} ${u.authProtocol.toUpperCase()} "${u.auth}" ${u.privProtocol.toUpperCase()} "${u.priv}"`),
      ...users.map((u) => `rouser ${u.user} authpriv`),
      '',
    ].join('\n'),
  )
  const port = await freeUdpPort()
  let log = ''
  // -f foreground, -Lo log to stdout, -C no system config files; MIBS= skips loading MIB files.
  const agent: ChildProcess = spawn(binary, ['-f', '-Lo', '-C', '-c', conf, `udp:127.0.0.1:${port}`], {
    env: { ...process.env, MIBS: '', SNMPCONFPATH: dir, SNMP_PERSISTENT_DIR: path.join(dir, 'persist') },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  agent.stdout!.on('data', (d: Buffer) => (log += d.toString()))
  agent.stderr!.on('data', (d: Buffer) => (log += d.toString()))

  const stop = async () => {
    if (agent.exitCode === null && agent.signalCode === null) {
      agent.kill('SIGTERM')
      await once(agent, 'exit')
    }
    if (existsSync(dir)) rmSync(dir, { recursive: true, force: true })
  }

  for (let i = 0; i < 100; i++) {
    if (agent.exitCode !== null) break
    if (await probe(port, community)) {
      return { host: '127.0.0.1', port, community, sysName, sysLocation, v3, log: () => log, stop }
    }
  }
  await stop()
  throw new Error(`snmpd did not answer on udp:127.0.0.1:${port}:\n${log}`)
}

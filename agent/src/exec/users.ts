import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface PosixUser {
  name: string
  uid: number
  gid: number
  home: string
}

/**
 * Looks a user up by name or numeric id. getent goes through NSS (LDAP, sssd); /etc/passwd is
 * the fallback where getent is missing.
 */
export async function lookupUser(user: string): Promise<PosixUser | undefined> {
  const line = (await getent('passwd', user)) ?? (await fileEntry('/etc/passwd', user))
  if (!line) return undefined
  const [name = '', , uid = '', gid = '', , home = '/'] = line.split(':')
  return { name, uid: Number(uid), gid: Number(gid), home }
}

/** A group's gid, by name or numeric id. */
export async function lookupGroupId(group: string): Promise<number | undefined> {
  const line = (await getent('group', group)) ?? (await fileEntry('/etc/group', group))
  if (line) return Number(line.split(':')[2])
  return /^\d+$/.test(group) ? Number(group) : undefined
}

/** The uid for `owner`; a bare number is taken as is even when no passwd entry has it. */
export async function lookupUserId(owner: string): Promise<number | undefined> {
  const user = await lookupUser(owner)
  if (user) return user.uid
  return /^\d+$/.test(owner) ? Number(owner) : undefined
}

async function getent(db: 'passwd' | 'group', key: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('getent', [db, key], { encoding: 'utf8' })
    return stdout.split('\n')[0] || undefined
  } catch {
    return undefined // not found (exit 2) or no getent: fall back to the file
  }
}

async function fileEntry(file: string, key: string): Promise<string | undefined> {
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return undefined
  }
  const numeric = /^\d+$/.test(key)
  return text.split('\n').find((l) => {
    const f = l.split(':')
    return f[0] === key || (numeric && f[2] === key)
  })
}

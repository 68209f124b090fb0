import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { lstat, mkdir, readdir, realpath } from 'node:fs/promises'
import path from 'node:path'
import { sftpCall } from './channel.ts'
import { CopyFailure, sftpMessage } from './copy.ts'
import type { SftpSession } from './ssh2.ts'

/*
 * The two sides of an `sftp.sync`: listing a directory tree on the controller and on the target
 * (regular files and directories; symbolic links are never followed), exclusion globs, the local
 * path rules, and the plan that compares them.
 */

export interface Entry {
  type: 'file' | 'dir'
  size: number
  /** Whole seconds, as SFTP carries them. */
  mtime: number
  mode: number
}

/** Relative POSIX path → entry. */
export type Tree = Map<string, Entry>

/** A glob as a RegExp: `*` and `?` stay inside one path segment, `**` crosses them. */
export function globRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!
    if (c === '*' && glob[i + 1] === '*') {
      i++
      if (glob[i + 1] === '/') {
        i++
        re += '(?:.*/)?'
      } else re += '.*'
    } else if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** A pattern without `/` matches a name at any depth; one with `/` matches the path from the synced directory. */
export function excluder(patterns: string[]): (rel: string) => boolean {
  const compiled = patterns.map((p) => {
    const anchored = p.includes('/')
    return { anchored, re: globRegExp(p.replace(/^\/+|\/+$/g, '')) }
  })
  return (rel) => compiled.some(({ anchored, re }) => re.test(anchored ? rel : path.posix.basename(rel)))
}

/**
 * The local directory of a sync: `local` relative to the files root (or absolute inside it),
 * with no `..`, and not reaching outside the root through a symbolic link. When it does not
 * exist: an error, created, or (`none`) null.
 */
export async function localDir(root: string, local: string, missing: 'error' | 'create' | 'none'): Promise<string | null> {
  const create = missing === 'create'
  if (local.split(/[\\/]+/).includes('..')) throw new CopyFailure(`local path ${local} must not contain ..`)
  const rootAbs = path.resolve(root)
  const abs = path.isAbsolute(local) ? path.normalize(local) : path.join(rootAbs, local)
  const inside = (p: string, r: string) => p === r || p.startsWith(r.endsWith(path.sep) ? r : r + path.sep)
  if (!inside(abs, rootAbs)) throw new CopyFailure(`local path ${local} is outside the files root`)
  if (create) await mkdir(rootAbs, { recursive: true }).catch(() => {})
  const realRoot = await realpath(rootAbs).catch(() => {
    throw new CopyFailure(`the files root ${rootAbs} does not exist (OPSC_FILES_DIR)`)
  })
  const escapes = async (p: string) => !inside(await realpath(p), realRoot)
  // Checked before anything is created: a link on the way must not make mkdir write outside the root.
  let existing = abs
  while (!(await lstat(existing).then(() => true, () => false))) existing = path.dirname(existing)
  if (await escapes(existing)) throw new CopyFailure(`local path ${local} leads outside the files root through a symbolic link`)
  if (existing !== abs && missing === 'none') return null
  if (create && existing !== abs) await mkdir(abs, { recursive: true })
  const real = await realpath(abs).catch(() => {
    throw new CopyFailure(`local directory ${local} does not exist under the files root`)
  })
  if (!inside(real, realRoot)) throw new CopyFailure(`local path ${local} leads outside the files root through a symbolic link`)
  const st = await lstat(real)
  if (!st.isDirectory()) throw new CopyFailure(`local path ${local} is not a directory`)
  return real
}

/** The local tree under `dir`; symbolic links and special files are reported through `skip`. */
export async function localTree(dir: string, excluded: (rel: string) => boolean, skip: (rel: string) => void): Promise<Tree> {
  const tree: Tree = new Map()
  const walk = async (rel: string) => {
    const entries = await readdir(path.join(dir, rel), { withFileTypes: true })
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const r = rel ? `${rel}/${e.name}` : e.name
      if (excluded(r)) continue
      if (e.isDirectory()) {
        const st = await lstat(path.join(dir, r))
        tree.set(r, { type: 'dir', size: 0, mtime: Math.floor(st.mtimeMs / 1000), mode: st.mode & 0o7777 })
        await walk(r)
      } else if (e.isFile()) {
        const st = await lstat(path.join(dir, r))
        tree.set(r, { type: 'file', size: st.size, mtime: Math.floor(st.mtimeMs / 1000), mode: st.mode & 0o7777 })
      } else skip(r)
    }
  }
  await walk('')
  return tree
}

/** The remote tree under `dir` (an absolute directory), one SFTP readdir per directory. */
export async function remoteTree(sftp: SftpSession, dir: string, excluded: (rel: string) => boolean, skip: (rel: string) => void): Promise<Tree> {
  const tree: Tree = new Map()
  const walk = async (rel: string) => {
    const where = rel ? path.posix.join(dir, rel) : dir
    const list = await sftpCall<{ filename: string; attrs: { mode: number; size: number; mtime: number; isDirectory(): boolean; isFile(): boolean } }[]>((cb) => sftp.readdir(where, cb)).catch((err: unknown) => {
      throw new CopyFailure(`cannot list ${where} on the target: ${sftpMessage(err)}`, { cause: err })
    })
    for (const e of list.sort((a, b) => a.filename.localeCompare(b.filename))) {
      if (e.filename === '.' || e.filename === '..') continue
      const r = rel ? `${rel}/${e.filename}` : e.filename
      if (excluded(r)) continue
      const a = e.attrs
      if (a.isDirectory()) {
        tree.set(r, { type: 'dir', size: 0, mtime: a.mtime, mode: a.mode & 0o7777 })
        await walk(r)
      } else if (a.isFile()) tree.set(r, { type: 'file', size: a.size, mtime: a.mtime, mode: a.mode & 0o7777 })
      else skip(r)
    }
  }
  await walk('')
  return tree
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256')
    createReadStream(file)
      .on('data', (d) => hash.update(d))
      .on('error', reject)
      .on('end', () => resolve(hash.digest('hex')))
  })
}

export type Action = 'create' | 'update' | 'delete'

export interface Plan {
  /** Directories to create on the destination (parents first). */
  dirs: string[]
  files: { path: string; action: 'create' | 'update'; entry: Entry }[]
  unchanged: number
  /** Files, then directories (deepest first), to remove from the destination (before anything is written). */
  deletes: { path: string; entry: Entry }[]
  /** Source files whose destination is a directory and delete is false. */
  conflicts: string[]
}

/**
 * What to do: `same(path)` answers whether two files of equal size are the same (by mtime or by
 * checksum). With `del`, destination entries absent from the source go.
 */
export async function plan(src: Tree, dst: Tree, del: boolean, same: (rel: string, s: Entry, d: Entry) => Promise<boolean>): Promise<Plan> {
  const p: Plan = { dirs: [], files: [], unchanged: 0, deletes: [], conflicts: [] }
  for (const [rel, s] of src) {
    const d = dst.get(rel)
    if (s.type === 'dir') {
      if (!d) p.dirs.push(rel)
      else if (d.type === 'file') {
        if (del) {
          p.deletes.push({ path: rel, entry: d })
          p.dirs.push(rel)
        } else p.conflicts.push(rel)
      }
      continue
    }
    if (!d) p.files.push({ path: rel, action: 'create', entry: s })
    else if (d.type === 'dir') {
      if (del) {
        p.deletes.push({ path: rel, entry: d })
        p.files.push({ path: rel, action: 'create', entry: s })
      } else p.conflicts.push(rel)
    } else if (d.size === s.size && (await same(rel, s, d))) p.unchanged++
    else p.files.push({ path: rel, action: 'update', entry: s })
  }
  if (del) {
    for (const [rel, d] of dst) if (!src.has(rel)) p.deletes.push({ path: rel, entry: d })
    // Files first, then directories deepest first, so each directory is empty when it goes.
    const depth = (rel: string) => rel.split('/').length
    p.deletes.sort((a, b) => (a.entry.type === b.entry.type ? depth(b.path) - depth(a.path) : a.entry.type === 'file' ? -1 : 1))
  }
  return p
}

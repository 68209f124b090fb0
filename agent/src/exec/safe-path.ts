import { realpath } from 'node:fs/promises'
import path from 'node:path'

// File actions name paths on the host; with allowed roots set, they must stay inside them.
// Lexical checks alone are not enough ("/root/link/../x" follows the link before the ".."),
// so ".." is refused outright and the check runs on real paths, symlinks resolved.

export type Resolved = { real: string } | { error: string }

/** The real path of an existing file (symlinks followed), checked against the roots. */
export async function resolveExisting(p: string, roots: string[] | undefined): Promise<Resolved> {
  const bad = lexicalProblem(p)
  if (bad) return { error: bad }
  let real: string
  try {
    real = await realpath(p)
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code === 'ENOENT' ? `${p} does not exist` : `${p}: ${(err as Error).message}` }
  }
  return checkRoots(p, real, roots)
}

/**
 * Where a file to be written really lands: the real path of its nearest existing ancestor
 * plus the missing rest. The last component is not followed: renaming onto a symlink
 * replaces the link, it does not write through it.
 */
export async function resolveTarget(p: string, roots: string[] | undefined): Promise<Resolved> {
  const bad = lexicalProblem(p)
  if (bad) return { error: bad }
  const normal = path.normalize(p)
  let dir: string
  try {
    dir = await realpathOfExisting(path.dirname(normal))
  } catch (err) {
    return { error: `${p}: ${(err as Error).message}` }
  }
  return checkRoots(p, path.join(dir, path.basename(normal)), roots)
}

function lexicalProblem(p: string): string | undefined {
  if (!path.isAbsolute(p)) return `path ${p} is not absolute`
  if (p.split(/[\\/]/).includes('..')) return `path ${p} must not contain '..'`
  if (path.basename(path.normalize(p)) === '' || path.normalize(p) === path.parse(p).root) return `path ${p} names no file`
  return undefined
}

async function realpathOfExisting(p: string): Promise<string> {
  try {
    return await realpath(p)
  } catch (err) {
    const parent = path.dirname(p)
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || parent === p) throw err
    return path.join(await realpathOfExisting(parent), path.basename(p))
  }
}

async function checkRoots(p: string, real: string, roots: string[] | undefined): Promise<Resolved> {
  if (!roots || roots.length === 0) return { real }
  for (const root of roots) {
    const realRoot = await realpath(root).catch(() => path.resolve(root))
    const rel = path.relative(realRoot, real)
    const escapes = rel === '..' || rel.startsWith(`..${path.sep}`) || path.isAbsolute(rel)
    if (!escapes) return { real }
  }
  return { error: `${p} is outside the allowed roots` }
}

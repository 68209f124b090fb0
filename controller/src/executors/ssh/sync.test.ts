import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { sftpSync, SyncInput } from './index.ts'
import { excluder, globRegExp } from './sync-tree.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()

interface SyncResult {
  created: number
  updated: number
  deleted: number
  unchanged: number
  bytes: number
  changes: { path: string; action: string; size: number }[]
  truncated: boolean
}

test('exclude globs: names at any depth, anchored paths, ** across directories', () => {
  const ex = excluder(['*.log', 'cache/**', 'build/out?.bin'])
  assert.equal(ex('a.log'), true)
  assert.equal(ex('deep/dir/b.log'), true)
  assert.equal(ex('a.log.txt'), false)
  assert.equal(ex('cache/x/y'), true)
  assert.equal(ex('sub/cache/x'), false)
  assert.equal(ex('build/out1.bin'), true)
  assert.equal(ex('build/out12.bin'), false)
  assert.equal(globRegExp('**/x').test('x'), true)
  assert.equal(globRegExp('**/x').test('a/b/x'), true)
})

test('the input needs an absolute remote directory and rejects unknown fields', () => {
  assert.equal(SyncInput.safeParse({ local: 'a', remote: 'relative/dir' }).success, false)
  assert.equal(SyncInput.safeParse({ local: 'a', remote: '/srv', recursive: true }).success, false)
  assert.deepEqual(SyncInput.parse({ local: 'a', remote: '/srv' }), { direction: 'push', local: 'a', remote: '/srv', compare: 'size_mtime', delete: false, dry_run: false, exclude: [] })
})

describe('sftp.sync against a real sshd', { skip }, () => {
  let f: SshFixture
  const filesRoot = mkdtempSync(path.join(tmpdir(), 'opsc-files-'))
  before(async () => {
    f = await sshFixture({ env: { OPSC_FILES_DIR: filesRoot } })
  })
  after(async () => {
    await f?.close()
    rmSync(filesRoot, { recursive: true, force: true })
  })

  let n = 0
  /** A fresh local source tree and remote destination path. */
  function trees(files: Record<string, string>): { local: string; localDir: string; remote: string } {
    const local = `set-${++n}`
    const localDir = path.join(filesRoot, local)
    for (const [rel, content] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(localDir, rel)), { recursive: true })
      writeFileSync(path.join(localDir, rel), content)
    }
    mkdirSync(localDir, { recursive: true })
    return { local, localDir, remote: path.join(f.sshd.home, `sync-${n}`) }
  }

  /** Files made here for the target side are made by root: hand them to the login user. */
  const giveToUser = (p: string) => execFileSync('chown', ['-R', `${f.sshd.user}:`, p])

  async function sync(v: Record<string, unknown>) {
    const target = await f.target()
    const x = f.exec(target)
    const out = await sftpSync.run('sftp.sync', SyncInput.parse(v), x)
    return { out, result: out.result as SyncResult, stdout: x.stdout(), stderr: x.stderr() }
  }

  test('the first push creates everything with mode and mtime; the second finds it all unchanged', async () => {
    const t = trees({ 'a.txt': 'alpha', 'dir/b.txt': 'bravo!', 'dir/sub/c.sh': '#!/bin/sh\n' })
    chmodSync(path.join(t.localDir, 'dir/sub/c.sh'), 0o750)
    utimesSync(path.join(t.localDir, 'a.txt'), 1_600_000_000, 1_600_000_000)
    const first = await sync({ local: t.local, remote: t.remote })
    assert.equal(first.out.status, 'succeeded', first.out.error ?? '')
    assert.deepEqual({ ...first.result, changes: undefined }, { created: 3, updated: 0, deleted: 0, unchanged: 0, bytes: 5 + 6 + 10, changes: undefined, truncated: false, dry_run: false })
    assert.deepEqual(first.result.changes.map((c) => [c.path, c.action, c.size]), [['a.txt', 'create', 5], ['dir/b.txt', 'create', 6], ['dir/sub/c.sh', 'create', 10]])
    assert.match(first.stdout, /^create a\.txt \(5 bytes\)$/m)
    assert.equal(readFileSync(path.join(t.remote, 'dir/b.txt'), 'utf8'), 'bravo!')
    assert.equal(statSync(path.join(t.remote, 'dir/sub/c.sh')).mode & 0o7777, 0o750)
    assert.equal(Math.floor(statSync(path.join(t.remote, 'a.txt')).mtimeMs / 1000), 1_600_000_000)
    assert.equal(statSync(path.join(t.remote, 'a.txt')).uid, statSync(f.sshd.home).uid, 'written as the login user')
    const second = await sync({ local: t.local, remote: t.remote })
    assert.deepEqual({ ...second.result, changes: [] }, { created: 0, updated: 0, deleted: 0, unchanged: 3, bytes: 0, changes: [], truncated: false, dry_run: false })
  })

  test('a changed file is updated; checksum also catches a same-size change with the same mtime', async () => {
    const t = trees({ 'a.txt': 'alpha', 'b.txt': 'bravo' })
    await sync({ local: t.local, remote: t.remote })
    writeFileSync(path.join(t.localDir, 'a.txt'), 'alpha, longer now')
    const changed = await sync({ local: t.local, remote: t.remote })
    assert.deepEqual([changed.result.updated, changed.result.unchanged], [1, 1])
    assert.equal(readFileSync(path.join(t.remote, 'a.txt'), 'utf8'), 'alpha, longer now')
    // Same size, same mtime, other bytes: only a checksum sees it.
    const st = statSync(path.join(t.localDir, 'b.txt'))
    writeFileSync(path.join(t.localDir, 'b.txt'), 'BRAVO')
    utimesSync(path.join(t.localDir, 'b.txt'), st.atime, st.mtime)
    assert.equal((await sync({ local: t.local, remote: t.remote })).result.unchanged, 2)
    const summed = await sync({ local: t.local, remote: t.remote, compare: 'checksum' })
    assert.deepEqual([summed.result.updated, summed.result.unchanged], [1, 1])
    assert.equal(readFileSync(path.join(t.remote, 'b.txt'), 'utf8'), 'BRAVO')
  })

  test('extra files on the destination go only with delete: true, and excluded ones stay', async () => {
    const t = trees({ 'keep.txt': 'k' })
    await sync({ local: t.local, remote: t.remote })
    mkdirSync(path.join(t.remote, 'old/deeper'), { recursive: true })
    writeFileSync(path.join(t.remote, 'extra.txt'), 'x')
    writeFileSync(path.join(t.remote, 'old/deeper/y.txt'), 'y')
    writeFileSync(path.join(t.remote, 'app.log'), 'log')
    giveToUser(t.remote)
    const kept = await sync({ local: t.local, remote: t.remote })
    assert.equal(kept.result.deleted, 0)
    assert.ok(existsSync(path.join(t.remote, 'extra.txt')))
    const del = await sync({ local: t.local, remote: t.remote, delete: true, exclude: ['*.log'] })
    assert.equal(del.out.status, 'succeeded', del.out.error ?? '')
    assert.equal(del.result.deleted, 2)
    assert.deepEqual(del.result.changes.map((c) => [c.path, c.action]).sort(), [['extra.txt', 'delete'], ['old/deeper/y.txt', 'delete']])
    assert.equal(existsSync(path.join(t.remote, 'extra.txt')), false)
    assert.equal(existsSync(path.join(t.remote, 'old')), false)
    assert.ok(existsSync(path.join(t.remote, 'app.log')), 'excluded files are not deleted')
    assert.ok(existsSync(path.join(t.remote, 'keep.txt')))
  })

  test('a dry run lists what it would do and writes nothing', async () => {
    const t = trees({ 'new.txt': 'new' })
    mkdirSync(t.remote, { recursive: true })
    writeFileSync(path.join(t.remote, 'extra.txt'), 'x')
    giveToUser(t.remote)
    const dry = await sync({ local: t.local, remote: t.remote, delete: true, dry_run: true })
    assert.equal(dry.out.status, 'succeeded', dry.out.error ?? '')
    assert.deepEqual([dry.result.created, dry.result.deleted, dry.result.bytes], [1, 1, 3])
    assert.match(dry.stdout, /^would create new\.txt \(3 bytes\)$/m)
    assert.match(dry.stdout, /^would delete extra\.txt$/m)
    assert.equal(existsSync(path.join(t.remote, 'new.txt')), false)
    assert.ok(existsSync(path.join(t.remote, 'extra.txt')))
  })

  test('pull mirrors a target directory into the files root, then finds it unchanged', async () => {
    const remote = path.join(f.sshd.home, 'pull-src')
    mkdirSync(path.join(remote, 'etc'), { recursive: true })
    writeFileSync(path.join(remote, 'etc/app.conf'), 'x = 1\n')
    writeFileSync(path.join(remote, 'top.bin'), Buffer.alloc(100_000, 7))
    chmodSync(path.join(remote, 'etc/app.conf'), 0o640)
    giveToUser(remote)
    const first = await sync({ direction: 'pull', local: 'pulled/one', remote })
    assert.equal(first.out.status, 'succeeded', first.out.error ?? '')
    assert.equal(first.result.created, 2)
    const local = path.join(filesRoot, 'pulled/one')
    assert.equal(readFileSync(path.join(local, 'etc/app.conf'), 'utf8'), 'x = 1\n')
    assert.ok(readFileSync(path.join(local, 'top.bin')).equals(Buffer.alloc(100_000, 7)))
    assert.equal(statSync(path.join(local, 'etc/app.conf')).mode & 0o7777, 0o640)
    const again = await sync({ direction: 'pull', local: 'pulled/one', remote })
    assert.deepEqual([again.result.created, again.result.updated, again.result.unchanged], [0, 0, 2])
    const dry = await sync({ direction: 'pull', local: 'pulled/two', remote, dry_run: true })
    assert.equal(dry.out.status, 'succeeded', dry.out.error ?? '')
    assert.equal(dry.result.created, 2)
    assert.equal(existsSync(path.join(filesRoot, 'pulled/two')), false, 'a dry run creates nothing, not even the directory')
  })

  test('a local path outside the files root is refused: .., an absolute path elsewhere, a symlink out', async () => {
    const remote = path.join(f.sshd.home, 'never')
    for (const local of ['../outside', 'a/../../outside', '/etc']) {
      const r = await sync({ local, remote })
      assert.equal(r.out.status, 'failed', local)
      assert.match(r.out.error!, /must not contain \.\.|outside the files root/)
    }
    symlinkSync('/etc', path.join(filesRoot, 'escape'))
    const viaLink = await sync({ local: 'escape', remote })
    assert.equal(viaLink.out.status, 'failed')
    assert.match(viaLink.out.error!, /through a symbolic link/)
    const pullViaLink = await sync({ direction: 'pull', local: 'escape/sub', remote: f.sshd.home })
    assert.equal(pullViaLink.out.status, 'failed')
    assert.equal(existsSync('/etc/sub'), false)
    assert.equal(existsSync(remote), false)
  })
})

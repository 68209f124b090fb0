import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { CopyInput } from '../exec-input.ts'
import { DownloadInput, INLINE_DOWNLOAD_LIMIT, runSftpDownload, runSshCopy, sftpDownload, sshCopy } from './index.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()
const copy = (v: Record<string, unknown>) => CopyInput.parse(v)
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

describe('ssh.copy and sftp.download against a real sshd', { skip }, () => {
  let f: SshFixture
  // sshd runs on this machine, so what the target wrote can be checked on the local file system.
  const home = () => f.sshd.home
  before(async () => {
    f = await sshFixture()
  })
  after(async () => {
    await f?.close()
  })

  test('uploads a file with its mode and returns the verified size and sha256', async () => {
    const target = await f.target()
    const dest = path.join(home(), 'app', 'config.ini')
    const out = await runSshCopy(target, copy({ destination: dest, content: 'key = value\n', mode: '0640' }), f.exec(target))
    assert.deepEqual(out, { status: 'succeeded', result: { path: dest, size: 12, sha256: sha256('key = value\n') } })
    assert.equal(readFileSync(dest, 'utf8'), 'key = value\n')
    const st = statSync(dest)
    assert.equal(st.mode & 0o7777, 0o640)
    assert.equal(st.uid, statSync(home()).uid, 'written by the login user')
    assert.deepEqual(readdirSync(path.dirname(dest)), ['config.ini'], 'no temp file left behind')
  })

  test('writes binary content given as base64', async () => {
    const target = await f.target({ credential: 'ed25519' })
    const bytes = randomBytes(300_000)
    const dest = path.join(home(), 'blob.bin')
    const out = await runSshCopy(target, copy({ destination: dest, content_base64: bytes.toString('base64') }), f.exec(target))
    assert.deepEqual(out, { status: 'succeeded', result: { path: dest, size: bytes.length, sha256: sha256(bytes) } })
    assert.ok(readFileSync(dest).equals(bytes))
  })

  test('overwrite=false refuses an existing file and leaves it alone', async () => {
    const target = await f.target()
    const dest = path.join(home(), 'keep.txt')
    assert.equal((await runSshCopy(target, copy({ destination: dest, content: 'original' }), f.exec(target))).status, 'succeeded')
    const out = await runSshCopy(target, copy({ destination: dest, content: 'replacement', overwrite: false }), f.exec(target))
    assert.deepEqual(out, { status: 'failed', error: `${dest} already exists and overwrite is false` })
    assert.equal(readFileSync(dest, 'utf8'), 'original')
  })

  test('overwriting replaces the content and keeps the old mode when none is given', async () => {
    const target = await f.target()
    const dest = path.join(home(), 'script.sh')
    await runSshCopy(target, copy({ destination: dest, content: 'echo one\n', mode: '0750' }), f.exec(target))
    const out = await runSshCopy(target, copy({ destination: dest, content: 'echo two\n' }), f.exec(target))
    assert.equal(out.status, 'succeeded')
    assert.equal(readFileSync(dest, 'utf8'), 'echo two\n')
    assert.equal(statSync(dest).mode & 0o7777, 0o750)
  })

  test('creates missing parent directories, unless create_parents is false', async () => {
    const target = await f.target()
    const deep = path.join(home(), 'a', 'b', 'c', 'file.txt')
    assert.equal((await runSshCopy(target, copy({ destination: deep, content: 'deep' }), f.exec(target))).status, 'succeeded')
    assert.equal(readFileSync(deep, 'utf8'), 'deep')
    const missing = path.join(home(), 'x', 'y', 'file.txt')
    const out = await runSshCopy(target, copy({ destination: missing, content: 'never', create_parents: false }), f.exec(target))
    assert.deepEqual(out, { status: 'failed', error: `directory ${path.dirname(missing)} does not exist (create_parents is false)` })
  })

  test('a relative destination is relative to the login user’s home', async () => {
    const target = await f.target()
    const out = await runSshCopy(target, copy({ destination: 'relative.txt', content: 'rel' }), f.exec(target))
    assert.equal(out.status, 'succeeded')
    assert.equal(readFileSync(path.join(home(), 'relative.txt'), 'utf8'), 'rel')
  })

  test('a destination the user may not write fails with the server’s reason', async () => {
    const target = await f.target()
    const out = await runSshCopy(target, copy({ destination: '/root/not-allowed.txt', content: 'x' }), f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /permission denied/i)
  })

  test('a destination that is a directory is refused', async () => {
    const target = await f.target()
    const out = await runSshCopy(target, copy({ destination: home(), content: 'x' }), f.exec(target))
    assert.deepEqual(out, { status: 'failed', error: `${home()} is a directory` })
  })

  test('downloads what was uploaded (round trip)', async () => {
    const target = await f.target()
    const bytes = randomBytes(100_000)
    const dest = path.join(home(), 'round-trip.bin')
    assert.equal((await sshCopy.run('sftp.upload', copy({ destination: dest, content_base64: bytes.toString('base64'), mode: '0600' }), f.exec(target))).status, 'succeeded')
    const out = await sftpDownload.run('sftp.download', DownloadInput.parse({ source: dest }), f.exec(target))
    assert.deepEqual(out, { status: 'succeeded', result: { path: dest, size: bytes.length, sha256: sha256(bytes), content_base64: bytes.toString('base64') } })
  })

  test('a download over the inline limit fails but reports size and sha256', async () => {
    const target = await f.target()
    const bytes = randomBytes(INLINE_DOWNLOAD_LIMIT + 1)
    const dest = path.join(home(), 'large.bin')
    assert.equal((await runSshCopy(target, copy({ destination: dest, content_base64: bytes.toString('base64') }), f.exec(target))).status, 'succeeded')
    const out = await runSftpDownload(target, DownloadInput.parse({ source: dest }), f.exec(target))
    assert.deepEqual(out, {
      status: 'failed',
      error: `${dest} is ${bytes.length} bytes, more than the ${INLINE_DOWNLOAD_LIMIT} bytes a step result can carry inline`,
      result: { path: dest, size: bytes.length, sha256: sha256(bytes) },
    })
    const capped = await runSftpDownload(target, DownloadInput.parse({ source: dest, max_bytes: 1000 }), f.exec(target))
    assert.deepEqual(capped, { status: 'failed', error: `${dest} is ${bytes.length} bytes, more than max_bytes (1000)` })
  })

  test('a 50 MB file goes up and comes back with the same SHA-256', async () => {
    const target = await f.target({ credential: 'ed25519' })
    const bytes = randomBytes(50 * 1024 * 1024)
    const expected = sha256(bytes)
    const dest = path.join(home(), 'fifty.bin')
    const up = await runSshCopy(target, copy({ destination: dest, content_base64: bytes.toString('base64') }), f.exec(target))
    assert.deepEqual(up, { status: 'succeeded', result: { path: dest, size: bytes.length, sha256: expected } })
    assert.equal(sha256(readFileSync(dest)), expected, 'the bytes on the target')
    // Read back over SFTP: too large to return inline, but hashed while it streams.
    const down = await runSftpDownload(target, DownloadInput.parse({ source: dest, max_bytes: 64 * 1024 * 1024 }), f.exec(target))
    assert.equal(down.status, 'failed')
    assert.deepEqual(down.result, { path: dest, size: bytes.length, sha256: expected })
  })

  test('downloading a missing file fails', async () => {
    const target = await f.target()
    const out = await runSftpDownload(target, DownloadInput.parse({ source: '/nonexistent/file' }), f.exec(target))
    assert.deepEqual(out, { status: 'failed', error: '/nonexistent/file does not exist' })
  })

  test('a copy to an unreachable target fails with the connection error', async () => {
    const target = await f.target({ port: 1 })
    const out = await runSshCopy(target, copy({ destination: '/tmp/x', content: 'x' }), f.exec(target))
    assert.equal(out.status, 'failed')
    assert.match(out.error!, /connection refused/)
  })

  test('a cancelled copy reports cancelled', async () => {
    const target = await f.target()
    const x = f.exec(target)
    x.abort('cancelled')
    assert.deepEqual(await runSshCopy(target, copy({ destination: path.join(home(), 'never.txt'), content: 'x' }), x), { status: 'cancelled' })
  })
})

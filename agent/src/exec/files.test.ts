import assert from 'node:assert/strict'
import { create, type MessageInitShape } from '@bufbuild/protobuf'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { FileChunkSchema, GetFileActionSchema, PutFileActionSchema, type PutFileAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { runGetFile, startPutFile, type PutFileOptions } from './files.ts'
import { collector } from './test-helpers.ts'

const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest())
type PutInit = Exclude<MessageInitShape<typeof PutFileActionSchema>, PutFileAction>
const freshDir = () => realpathSync(mkdtempSync(path.join(tmpdir(), 'opsc-files-')))

/** Sends `content` in chunks of `size` bytes, as the session would. */
async function putFile(target: string, content: Buffer, init: PutInit = {}, opts: PutFileOptions = {}, size = 1000) {
  const action = create(PutFileActionSchema, { path: target, size: BigInt(content.length), sha256: sha256(content), ...init })
  const writer = startPutFile(action, opts)
  let offset = 0
  do {
    const data = content.subarray(offset, offset + size)
    await writer.write(create(FileChunkSchema, { offset: BigInt(offset), data, last: offset + size >= content.length }))
    offset += size
  } while (offset < content.length)
  return writer.finish()
}

const content = Buffer.from(Array.from({ length: 5000 }, (_, i) => i % 251))

test('put_file writes the file with its mode and reports size and checksum', async () => {
  const dir = freshDir()
  const target = path.join(dir, 'app.conf')
  const outcome = await putFile(target, content, { mode: 0o640 })
  assert.equal(outcome.error, undefined)
  assert.equal(outcome.exitCode, 0)
  assert.ok(readFileSync(target).equals(content))
  assert.equal(statSync(target).mode & 0o777, 0o640)
  assert.equal(outcome.fileSize, content.length)
  assert.deepEqual(outcome.fileSha256, sha256(content))
  assert.deepEqual(readdirSync(dir), ['app.conf'])
})

test('put_file writes an empty file', async () => {
  const dir = freshDir()
  const outcome = await putFile(path.join(dir, 'empty'), Buffer.alloc(0))
  assert.equal(outcome.error, undefined)
  assert.equal(readFileSync(path.join(dir, 'empty')).length, 0)
})

test('put_file with a bad checksum fails and leaves neither the file nor a temp file', async () => {
  const dir = freshDir()
  const target = path.join(dir, 'bad')
  const outcome = await putFile(target, content, { sha256: sha256(Buffer.from('other')) })
  assert.match(outcome.error ?? '', /sha256 mismatch/)
  assert.equal(outcome.exitCode, undefined)
  assert.deepEqual(readdirSync(dir), [])
})

test('put_file refuses a chunk at the wrong offset', async () => {
  const dir = freshDir()
  const action = create(PutFileActionSchema, { path: path.join(dir, 'f'), size: 10n, sha256: sha256(Buffer.alloc(10)) })
  const writer = startPutFile(action, {})
  await writer.write(create(FileChunkSchema, { offset: 0n, data: Buffer.alloc(5) }))
  await writer.write(create(FileChunkSchema, { offset: 6n, data: Buffer.alloc(4), last: true }))
  const outcome = await writer.finish()
  assert.equal(outcome.error, 'chunk at offset 6, expected offset 5')
  assert.deepEqual(readdirSync(dir), [])
})

test('put_file refuses content longer or shorter than declared', async () => {
  const dir = freshDir()
  const long = await putFile(path.join(dir, 'long'), content, { size: 100n })
  assert.match(long.error ?? '', /exceeds the declared size of 100 bytes/)
  const short = await putFile(path.join(dir, 'short'), content, { size: 6000n })
  assert.equal(short.error, 'received 5000 bytes, expected 6000')
  assert.deepEqual(readdirSync(dir), [])
})

test('put_file keeps an existing file unless overwrite is set', async () => {
  const dir = freshDir()
  const target = path.join(dir, 'existing')
  writeFileSync(target, 'old')
  const refused = await putFile(target, content)
  assert.match(refused.error ?? '', /exists and overwrite is not set/)
  assert.equal(readFileSync(target, 'utf8'), 'old')
  const replaced = await putFile(target, content, { overwrite: true })
  assert.equal(replaced.error, undefined)
  assert.ok(readFileSync(target).equals(content))
  assert.deepEqual(readdirSync(dir), ['existing'])
})

test('put_file creates missing directories only when asked', async () => {
  const dir = freshDir()
  const target = path.join(dir, 'a', 'b', 'file')
  assert.match((await putFile(target, content)).error ?? '', /does not exist/)
  assert.equal((await putFile(target, content, { createParents: true })).error, undefined)
  assert.ok(readFileSync(target).equals(content))
})

test('put_file refuses paths outside the allowed roots, .. tricks and symlink escapes', async () => {
  const root = freshDir()
  const outside = freshDir()
  symlinkSync(outside, path.join(root, 'escape'))
  const opts = { allowedRoots: [root] }
  const cases = [
    [path.join(outside, 'f'), /outside the allowed roots/],
    [`${root}/../${path.basename(outside)}/f`, /must not contain '\.\.'/],
    [path.join(root, 'escape', 'f'), /outside the allowed roots/],
    [path.join(root, 'escape', 'new-dir', 'f'), /outside the allowed roots/],
    ['relative/f', /is not absolute/],
  ] as const
  for (const [target, error] of cases) {
    const outcome = await putFile(target, content, { createParents: true }, opts)
    assert.match(outcome.error ?? '', error, target)
  }
  assert.deepEqual(readdirSync(outside), [])
  assert.equal((await putFile(path.join(root, 'inside', 'f'), content, { createParents: true }, opts)).error, undefined)
})

test('put_file aborted midway leaves nothing behind and reports interrupted', async () => {
  const dir = freshDir()
  const action = create(PutFileActionSchema, { path: path.join(dir, 'f'), size: 10n, sha256: sha256(Buffer.alloc(10)) })
  const writer = startPutFile(action, {})
  await writer.write(create(FileChunkSchema, { offset: 0n, data: Buffer.alloc(5) }))
  const outcome = await writer.abort('cancelled by user')
  assert.equal(outcome.interrupted, true)
  assert.equal(outcome.error, 'put_file aborted: cancelled by user')
  assert.deepEqual(readdirSync(dir), [])
})

test('put_file owner needs root, and as root is applied', async () => {
  const dir = freshDir()
  const target = path.join(dir, 'owned')
  const outcome = await putFile(target, content, { owner: 'nobody', group: '0' })
  if (process.getuid?.() === 0) {
    assert.equal(outcome.error, undefined)
    assert.equal(statSync(target).uid, Number(readFileSync('/etc/passwd', 'utf8').match(/^nobody:[^:]*:(\d+):/m)?.[1]))
    assert.equal(statSync(target).gid, 0)
  } else {
    assert.match(outcome.error ?? '', /needs the agent to run as root/)
    assert.equal(existsSync(target), false)
  }
})

test('get_file streams the content in pieces of at most 32 KiB and reports its checksum', async () => {
  const dir = freshDir()
  const big = Buffer.alloc(100_000)
  for (let i = 0; i < big.length; i++) big[i] = (i * 31) % 256
  writeFileSync(path.join(dir, 'big'), big)
  const c = collector()
  const outcome = await runGetFile(create(GetFileActionSchema, { path: path.join(dir, 'big') }), c.opts)
  assert.equal(outcome.error, undefined)
  assert.equal(outcome.exitCode, 0)
  assert.ok(c.bytes('file').equals(big))
  assert.ok(c.chunks.every((ch) => ch.stream === 'file' && ch.data.length <= 32 * 1024))
  assert.equal(outcome.fileSize, big.length)
  assert.deepEqual(outcome.fileSha256, sha256(big))
})

test('get_file refuses files over max_size or the default cap, and non-regular files', async () => {
  const dir = freshDir()
  writeFileSync(path.join(dir, 'f'), content)
  const action = (p: string, maxSize = 0n) => create(GetFileActionSchema, { path: p, maxSize })
  const c = collector()
  assert.match((await runGetFile(action(path.join(dir, 'f'), 100n), c.opts)).error ?? '', /more than the limit of 100/)
  const capped = await runGetFile(action(path.join(dir, 'f')), { ...c.opts, defaultMaxSize: 10 })
  assert.match(capped.error ?? '', /more than the limit of 10\b/)
  assert.match((await runGetFile(action(dir), c.opts)).error ?? '', /not a regular file/)
  assert.match((await runGetFile(action(path.join(dir, 'missing')), c.opts)).error ?? '', /does not exist/)
  assert.equal(c.chunks.length, 0)
})

test('get_file respects allowed roots through symlinks', async () => {
  const root = freshDir()
  const outside = freshDir()
  writeFileSync(path.join(outside, 'secret'), 'secret')
  symlinkSync(path.join(outside, 'secret'), path.join(root, 'link'))
  mkdirSync(path.join(root, 'sub'))
  writeFileSync(path.join(root, 'sub', 'ok'), 'ok')
  const c = collector({})
  const get = (p: string) => runGetFile(create(GetFileActionSchema, { path: p }), { ...c.opts, allowedRoots: [root] })
  assert.match((await get(path.join(root, 'link'))).error ?? '', /outside the allowed roots/)
  assert.match((await get(path.join(outside, 'secret'))).error ?? '', /outside the allowed roots/)
  assert.equal((await get(path.join(root, 'sub', 'ok'))).error, undefined)
  assert.equal(c.text('file'), 'ok')
})

test('get_file stops when aborted', async () => {
  const dir = freshDir()
  writeFileSync(path.join(dir, 'f'), content)
  const c = collector()
  c.controller.abort()
  const outcome = await runGetFile(create(GetFileActionSchema, { path: path.join(dir, 'f') }), c.opts)
  assert.equal(outcome.interrupted, true)
  assert.equal(c.chunks.length, 0)
})

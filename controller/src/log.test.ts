import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { createLogger, redactUrl } from './log.ts'

function capture() {
  const lines: string[] = []
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk))
      cb()
    },
  })
  return { lines, destination }
}

test('censors secrets at the top level and one level down', () => {
  const { lines, destination } = capture()
  const log = createLogger({ level: 'info', destination })
  log.info({ password: 'hunter2', user: { password: 'pw2', token: 't0k' }, headers: { authorization: 'Bearer abc' } }, 'login')
  const text = lines.join('')
  for (const secret of ['hunter2', 'pw2', 't0k', 'Bearer abc']) assert.ok(!text.includes(secret), `${secret} leaked`)
  const record = JSON.parse(lines[0]!)
  assert.equal(record.msg, 'login')
  assert.equal(record.level, 'info')
  assert.equal(record.user.password, '[redacted]')
})

test('hides the password of a database URL', () => {
  assert.equal(redactUrl('postgres://app:s3cret@db:5432/ops'), 'postgres://app:***@db:5432/ops')
  assert.ok(!redactUrl('postgres://app:s3cret@db/ops').includes('s3cret'))
})

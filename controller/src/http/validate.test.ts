import assert from 'node:assert/strict'
import { test } from 'node:test'
import { z } from 'zod'
import { issuePath, parseWith } from './validate.ts'

test('paths use brackets for array positions', () => {
  assert.equal(issuePath(['steps', 2, 'command']), 'steps[2].command')
  assert.equal(issuePath([0, 'name']), '[0].name')
  assert.equal(issuePath([]), '')
})

test('lists every problem at once', () => {
  const Schema = z.object({ name: z.string(), steps: z.array(z.object({ command: z.string() })) }).strict()
  assert.throws(
    () => parseWith(Schema, { steps: [{ command: 'ok' }, {}], extra: 1 }),
    (err: Error & { details?: { path: string }[] }) => {
      assert.equal(err.name, 'ValidationError')
      const paths = err.details!.map((d) => d.path).sort()
      assert.deepEqual(paths, ['', 'name', 'steps[1].command'])
      return true
    },
  )
})

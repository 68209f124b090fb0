import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { fromDefinition, moveItem, parseDefinitionText, remapStepErrors, stepErrors, toDefinition, uniqueStepId, withoutErrorsAt } from './model.ts'
import { changeCount, diffRows } from './version-diff.ts'

describe('the builder draft', () => {
  test('a job as GET shows it becomes a draft without server fields, and back into the same definition', () => {
    const job = { id: 'x', version: 3, latest_version: 3, created_at: 'a', updated_at: 'b', created_by: 'u', updated_by: 'u', name: 'J', steps: [{ type: 'wait', seconds: 1 }], parameters: [] }
    const draft = fromDefinition(job)
    assert.deepEqual(Object.keys(draft.job).sort(), ['name', 'parameters'])
    assert.equal(draft.steps.length, 1)
    assert.deepEqual(toDefinition(draft), { name: 'J', parameters: [], steps: [{ type: 'wait', seconds: 1 }] })
    // Keys by position survive a re-parse (the JSON view), so the form's cards stay put.
    assert.equal(fromDefinition(job, [draft.steps[0]!.key]).steps[0]!.key, draft.steps[0]!.key)
  })

  test('moveItem moves and clamps; uniqueStepId suffixes taken ids', () => {
    assert.deepEqual(moveItem(['a', 'b', 'c'], 2, 0), ['c', 'a', 'b'])
    assert.deepEqual(moveItem(['a', 'b', 'c'], 0, 9), ['b', 'c', 'a'])
    assert.equal(uniqueStepId('http.get', []), 'http_get')
    assert.equal(uniqueStepId('http.get', ['http_get', 'http_get_2']), 'http_get_3')
    assert.equal(uniqueStepId('9lives', []), 'lives')
  })

  test("server errors follow their step when steps move, and leave when their field changes", () => {
    const errors = { 'steps[0].url': 'bad', 'steps[1].seconds': 'required', name: 'required' }
    assert.deepEqual(remapStepErrors(errors, ['a', 'b'], ['b', 'a']), { 'steps[1].url': 'bad', 'steps[0].seconds': 'required', name: 'required' })
    assert.deepEqual(stepErrors(errors, 0), { url: 'bad' })
    assert.deepEqual(withoutErrorsAt({ 'steps[0].headers.X': 'bad', 'steps[0].url': 'bad' }, 'steps[0].headers'), { 'steps[0].url': 'bad' })
  })

  test('the JSON view reports where the text stops being JSON, and refuses what is not an object', () => {
    const bad = parseDefinitionText('{\n  "name": "x",\n  oops\n}')
    assert.equal(bad.ok, false)
    assert.match(bad.ok ? '' : bad.message, /line 3/)
    assert.equal(parseDefinitionText('[]').ok, false)
    assert.deepEqual(parseDefinitionText('{"name":"x"}'), { ok: true, value: { name: 'x' } })
  })
})

describe('version diff', () => {
  test('shows changed lines and folds long unchanged runs', () => {
    const before = { name: 'J', version: 1, steps: Array.from({ length: 10 }, (_, i) => ({ id: `s${i}`, seconds: i })) }
    const after = { ...before, version: 2, steps: before.steps.map((s, i) => (i === 9 ? { ...s, seconds: 99 } : s)) }
    const rows = diffRows(before, after)
    assert.equal(changeCount(rows), 2)
    assert.ok(rows.some((r) => r.kind === 'del' && r.text.includes('"seconds": 9')))
    assert.ok(rows.some((r) => r.kind === 'add' && r.text.includes('"seconds": 99')))
    assert.ok(rows.some((r) => r.kind === 'skip'), 'unchanged steps are folded')
    assert.equal(changeCount(diffRows(before, { ...before, version: 5 })), 0, 'the version number is not a change')
  })
})

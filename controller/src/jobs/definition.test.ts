import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ValidationError } from '../errors.ts'
import { normaliseTargetRef, parseJobDefinition, resolveParameters, type ParameterDef, type Problem } from './definition.ts'

/** The problems a rejected definition (or parameter set) reports. */
function problemsOf(fn: () => unknown): Problem[] {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ValidationError, `expected a ValidationError, got ${String(err)}`)
    return err.details as Problem[]
  }
  assert.fail('expected a ValidationError')
}

const paths = (problems: Problem[]) => problems.map((p) => p.path)

describe('parseJobDefinition', () => {
  test("accepts the seed's exact format and normalises it", () => {
    const seed = {
      name: 'Sample Windows Service Restart',
      version: 1,
      parameters: { svc: 'Spooler' },
      steps: [{ type: 'winrm.exec', shell: 'powershell', target: 'sample-windows-server', command: 'Restart-Service {{ svc }}; (Get-Service {{ svc }}).Status', timeoutSec: 90 }],
    }
    const def = parseJobDefinition(seed)
    assert.equal(def.name, 'Sample Windows Service Restart')
    assert.deepEqual(def.parameters, [{ name: 'svc', type: 'string', default: 'Spooler', required: false }])
    assert.equal(def.steps.length, 1)
    const [step] = def.steps
    assert.equal(step!.id, 'step1')
    assert.equal(step!.type, 'winrm.exec')
    assert.equal(step!.timeout_sec, 90)
    assert.equal(step!.target, 'name:sample-windows-server')
    assert.equal(step!.run_if, 'success')
    assert.equal(step!.continue_on_error, false)
    assert.equal(step!.with.command, 'Restart-Service {{ svc }}; (Get-Service {{ svc }}).Status')
    assert.equal(step!.with.shell, 'powershell')
    // camelCase is gone, and the seed's version number is not part of the stored definition.
    assert.equal('timeoutSec' in step!.with, false)
    assert.equal('version' in def, false)
    assert.equal(def.targets, null)
    assert.equal(def.enabled, true)
    // The normalised form parses to itself (what PUT of a GET body does).
    const again = parseJobDefinition({ ...def, steps: def.steps.map(({ with: own, ...common }) => ({ ...common, ...own })) })
    assert.deepEqual(again, def)
  })

  test('reports every problem with its JSON path at once', () => {
    const problems = problemsOf(() =>
      parseJobDefinition({
        // no name
        parameters: [
          { name: 'pat', pattern: '(unclosed' },
          { name: 'pick', type: 'choice' },
          { name: 'pw', type: 'secret', default: 'hunter2' },
        ],
        targets: 'os=linux,,',
        steps: [
          { id: 'a', type: 'no.such.type' },
          { id: 'b', type: 'exec' },
          { id: 'a', type: 'wait', seconds: 1 },
          { id: 'd', type: 'http.get', url: 'http://example.test/{{ nosuchparam }}' },
          { id: 'e', type: 'http.get', url: 'http://example.test/{{ steps.later.stdout }}' },
          { id: 'later', type: 'wait', seconds: 1, target: 'tag:env={{ target.tags.env }}' },
        ],
      }),
    )
    const found = paths(problems)
    for (const path of [
      'name',
      'parameters[0].pattern',
      'parameters[1].choices',
      'parameters[2].default',
      'targets',
      'steps[0].type',
      'steps[1].command',
      'steps[2].id',
      'steps[3].url',
      'steps[4].url',
      'steps[5].target',
    ]) {
      assert.ok(found.includes(path), `expected a problem at ${path}; got ${JSON.stringify(problems)}`)
    }
    const at = (path: string) => problems.filter((p) => p.path === path).map((p) => p.message).join(' / ')
    assert.match(at('steps[0].type'), /unknown step type "no\.such\.type"/)
    // zod's own wording for a missing field ("expected string, received undefined"), not the schema's 'required'.
    assert.match(at('steps[1].command'), /required|undefined/)
    assert.match(at('steps[2].id'), /duplicate step id "a"/)
    assert.match(at('steps[3].url'), /unknown parameter "nosuchparam"/)
    assert.match(at('steps[4].url'), /"later" is not an earlier step/)
    assert.match(at('steps[5].target'), /target\.tags\.env is not available/)
    assert.match(at('parameters[0].pattern'), /regular expression/)
    assert.match(at('parameters[2].default'), /secret/)
  })

  test('a bad definition is a ValidationError whose message names the paths', () => {
    assert.throws(
      () => parseJobDefinition({ name: 'x', steps: [{ type: 'wait' }] }),
      (err: unknown) => err instanceof ValidationError && err.code === 'VALIDATION' && /steps\[0\]\.seconds/.test(err.message),
    )
    assert.deepEqual(paths(problemsOf(() => parseJobDefinition({ name: 'x', steps: [] }))), ['steps'])
    assert.deepEqual(paths(problemsOf(() => parseJobDefinition({ name: 'x', steps: [{ type: 'wait', seconds: 1 }], bogus: true }))), [''])
  })

  test('a selector template may use parameters but not target fields', () => {
    const ok = parseJobDefinition({ name: 'x', parameters: [{ name: 'env' }], targets: 'tag:env={{ env }}', steps: [{ type: 'wait', seconds: 1 }] })
    assert.equal(ok.targets, 'tag:env={{ env }}')
    const problems = problemsOf(() => parseJobDefinition({ name: 'x', targets: 'name:{{ target.name }}', steps: [{ type: 'wait', seconds: 1 }] }))
    assert.deepEqual(paths(problems), ['targets'])
  })

  test('step references: earlier steps are fine, defaults come from the job retry policy', () => {
    const def = parseJobDefinition({
      name: 'x',
      retry: { retries: 2, backoffSec: 5 },
      steps: [
        { id: 'first', type: 'wait', seconds: 1 },
        { type: 'http.get', url: 'http://example.test/{{ steps.first.stdout | trim }}', retries: 0, runIf: 'always', continueOnError: true },
      ],
    })
    assert.equal(def.steps[0]!.retries, 2)
    assert.equal(def.steps[0]!.retry_backoff_sec, 5)
    assert.equal(def.steps[1]!.id, 'step2')
    assert.equal(def.steps[1]!.retries, 0)
    assert.equal(def.steps[1]!.run_if, 'always')
    assert.equal(def.steps[1]!.continue_on_error, true)
  })
})

describe('resolveParameters', () => {
  const p = (def: Partial<ParameterDef> & { name: string }): ParameterDef => ({ type: 'string', required: false, ...def })

  test('numbers are coerced and range-checked', () => {
    const defs = [p({ name: 'n', type: 'number', min: 1, max: 10 })]
    assert.deepEqual(resolveParameters(defs, { n: '7' }), { n: 7 })
    assert.deepEqual(resolveParameters(defs, { n: 10 }), { n: 10 })
    assert.match(problemsOf(() => resolveParameters(defs, { n: 'seven' }))[0]!.message, /must be a number/)
    assert.match(problemsOf(() => resolveParameters(defs, { n: 0 }))[0]!.message, /at least 1/)
    assert.match(problemsOf(() => resolveParameters(defs, { n: '11' }))[0]!.message, /at most 10/)
    assert.deepEqual(resolveParameters([p({ name: 'n', type: 'number', default: 3 })], {}), { n: 3 })
  })

  test('booleans accept true/false and their strings only', () => {
    const defs = [p({ name: 'b', type: 'boolean' })]
    assert.deepEqual(resolveParameters(defs, { b: 'true' }), { b: true })
    assert.deepEqual(resolveParameters(defs, { b: false }), { b: false })
    assert.deepEqual(resolveParameters([p({ name: 'b', type: 'boolean', default: true })], { b: false }), { b: false })
    assert.deepEqual(paths(problemsOf(() => resolveParameters(defs, { b: 'yes' }))), ['parameters.b'])
  })

  test('choices must be one of the listed values', () => {
    const defs = [p({ name: 'c', type: 'choice', choices: ['start', 'stop'] })]
    assert.deepEqual(resolveParameters(defs, { c: 'stop' }), { c: 'stop' })
    assert.match(problemsOf(() => resolveParameters(defs, { c: 'restart' }))[0]!.message, /one of start, stop/)
  })

  test('a pattern must match the whole value', () => {
    const defs = [p({ name: 's', pattern: '[a-z]+' })]
    assert.deepEqual(resolveParameters(defs, { s: 'nginx' }), { s: 'nginx' })
    assert.equal(problemsOf(() => resolveParameters(defs, { s: 'nginx; rm -rf /' }))[0]!.path, 'parameters.s')
    assert.equal(problemsOf(() => resolveParameters(defs, { s: 'X' })).length, 1)
    // An alternation is anchored as a whole, not just its first and last branch.
    const alt = [p({ name: 's', pattern: 'ab|cd' })]
    assert.deepEqual(resolveParameters(alt, { s: 'cd' }), { s: 'cd' })
    assert.equal(problemsOf(() => resolveParameters(alt, { s: 'abcd' })).length, 1)
    assert.equal(problemsOf(() => resolveParameters(alt, { s: 'abx' })).length, 1)
  })

  test('required parameters must be given; optional strings default to empty', () => {
    const defs = [p({ name: 'host', required: true }), p({ name: 'note' })]
    assert.deepEqual(resolveParameters(defs, { host: 'web-1' }), { host: 'web-1', note: '' })
    const problems = problemsOf(() => resolveParameters(defs, {}))
    assert.deepEqual(problems, [{ path: 'parameters.host', message: 'required' }])
    assert.deepEqual(paths(problemsOf(() => resolveParameters(defs, { host: '' }))), ['parameters.host'])
  })

  test('an unknown parameter is an error, reported together with the others', () => {
    const defs = [p({ name: 'host', required: true }), p({ name: 'n', type: 'number' })]
    const problems = problemsOf(() => resolveParameters(defs, { hots: 'web-1', n: 'x' }))
    assert.deepEqual(paths(problems).sort(), ['parameters.host', 'parameters.hots', 'parameters.n'])
    assert.match(problems.find((x) => x.path === 'parameters.hots')!.message, /unknown parameter/)
  })

  test('secrets are strings, may carry a pattern and have no default', () => {
    const defs = [p({ name: 'pw', type: 'secret', pattern: '.{8,}' })]
    assert.deepEqual(resolveParameters(defs, { pw: 'correct horse' }), { pw: 'correct horse' })
    assert.equal(problemsOf(() => resolveParameters(defs, { pw: 'short' }))[0]!.path, 'parameters.pw')
    assert.equal(problemsOf(() => resolveParameters(defs, { pw: 12345678 }))[0]!.path, 'parameters.pw')
    // And a definition that gives a secret a default is refused.
    assert.deepEqual(paths(problemsOf(() => parseJobDefinition({ name: 'x', parameters: [{ name: 'pw', type: 'secret', default: 'x' }], steps: [{ type: 'wait', seconds: 1 }] }))), ['parameters[0].default'])
  })

  test('typed parameter definitions are checked in the job: defaults must fit their type', () => {
    const problems = problemsOf(() =>
      parseJobDefinition({
        name: 'x',
        parameters: [
          { name: 'n', type: 'number', min: 5, default: 1 },
          { name: 'c', type: 'choice', choices: ['a'], default: 'b' },
          { name: 'b', type: 'boolean', pattern: 'x' },
          { name: 'target', type: 'string' },
        ],
        steps: [{ type: 'wait', seconds: 1 }],
      }),
    )
    assert.deepEqual(paths(problems).sort(), ['parameters[0].default', 'parameters[1].default', 'parameters[2].pattern', 'parameters[3].name'])
  })
})

describe('normaliseTargetRef', () => {
  test('a uuid becomes id:, a plain name becomes name:, a selector is kept', () => {
    assert.equal(normaliseTargetRef('6F1C1A52-0000-4000-8000-000000000001'), 'id:6f1c1a52-0000-4000-8000-000000000001')
    assert.equal(normaliseTargetRef(' web-01.example.com '), 'name:web-01.example.com')
    assert.equal(normaliseTargetRef('sample-windows-server'), 'name:sample-windows-server')
    for (const selector of ['os=windows', 'name:web-*', 'group:prod', 'id:6f1c1a52-0000-4000-8000-000000000001', 'tag:env=prod,os=linux', 'a | b', 'tag:env={{ env }}', '*']) {
      assert.equal(normaliseTargetRef(selector), selector.trim())
    }
  })
})

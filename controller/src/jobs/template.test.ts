import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { describe, test } from 'node:test'
import { SecretMasker } from '../../../proto/src/masking.ts'
import { ValidationError } from '../errors.ts'
import {
  checkTemplate,
  hasTemplate,
  parseTemplate,
  powershellQuote,
  renderDeep,
  renderTemplate,
  secretForms,
  shellQuote,
  templateReferences,
  TemplateError,
  TemplateRenderError,
  type TemplateScope,
} from './template.ts'

function scope(overrides: Partial<TemplateScope> = {}): TemplateScope {
  return {
    params: { svc: 'nginx', count: 3, enabled: true, empty: '', nothing: null, cfg: { port: 8080, hosts: ['a', 'b'] }, svc2: 'x' },
    target: {
      id: '6f1c1a52-0000-4000-8000-000000000001',
      name: 'web-1',
      address: '10.0.0.5',
      os_type: 'linux',
      tags: { env: 'prod', 'k8s.io': 'zone-a' },
      facts: { cpu: { count: 4 }, disks: [{ name: 'sda' }] },
    },
    steps: {
      s1: { stdout: '{"items":[{"name":"first"},{"name":"second"}],"ok":true,"none":null}', stderr: 'warn', exit_code: 0, status: 'succeeded', result: { rows: 2 } },
      s2: { stdout: 'not json', stderr: '', exit_code: null, status: 'failed' },
    },
    secrets: { db: { password: "p@ss'word", user: 'admin' } },
    ...overrides,
  }
}

const render = (source: string, s: TemplateScope = scope()) => renderTemplate(source, s)

function renderError(source: string, s: TemplateScope = scope()): TemplateRenderError {
  try {
    render(source, s)
  } catch (err) {
    assert.ok(err instanceof TemplateRenderError, `expected TemplateRenderError, got ${String(err)}`)
    assert.ok(!(err instanceof ValidationError))
    return err
  }
  assert.fail(`expected ${source} to fail`)
}

function parseError(source: string): TemplateError {
  try {
    parseTemplate(source)
  } catch (err) {
    assert.ok(err instanceof TemplateError, `expected TemplateError, got ${String(err)}`)
    assert.ok(err instanceof ValidationError)
    return err
  }
  assert.fail(`expected ${source} not to parse`)
}

/**
 * What /bin/sh prints for `printf '%s' <quoted>` and `echo <quoted>`: the exact original text proves
 * the quoting leaves nothing to interpret. (dash's echo expands backslash escapes itself, so echo is
 * only used for values without a backslash.)
 */
function throughShell(quoted: string, value: string): void {
  assert.equal(execFileSync('/bin/sh', ['-c', `printf '%s' ${quoted}`], { encoding: 'utf8' }), value)
  if (!value.includes('\\')) assert.equal(execFileSync('/bin/sh', ['-c', `echo ${quoted}`], { encoding: 'utf8' }), `${value}\n`)
}

describe('parsing', () => {
  test('returns a template without braces unchanged', () => {
    const text = 'systemctl restart nginx } { } "quoted" | pipe'
    assert.equal(render(text), text)
    assert.deepEqual(parseTemplate(text).parts, [{ kind: 'text', text }])
    assert.equal(hasTemplate(text), false)
    assert.equal(hasTemplate('a {{ b }}'), true)
    assert.equal(render(''), '')
  })

  test('keeps the text around expressions and ignores whitespace inside them', () => {
    assert.equal(render('restart {{svc}} now'), 'restart nginx now')
    assert.equal(render('restart {{ \n svc \t| upper\n}}!'), 'restart NGINX!')
    assert.equal(render('}} {{ svc }}}}'), '}} nginx}}')
  })

  test('writes a literal "{{" as a string expression, with \\" and \\\\ escapes', () => {
    assert.equal(render('{{ "{{" }} svc }}'), '{{ svc }}')
    assert.equal(render('{{ "a \\"b\\" c\\\\d }}" }}'), 'a "b" c\\d }}')
  })

  test('caches parses by source', () => {
    assert.equal(parseTemplate('x {{ svc }}'), parseTemplate('x {{ svc }}'))
    assert.ok(Object.isFrozen(parseTemplate('x {{ svc }}').parts))
  })

  test('rejects an unclosed "{{" and names its position', () => {
    assert.equal(parseError('echo {{ svc').message, 'unclosed "{{" at 6')
    assert.equal(parseError('echo {{').message, 'unclosed "{{" at 6')
    assert.equal(parseError('a {{ svc | shell').message, 'unclosed "{{" at 3')
    assert.equal(parseError('a {{ "x }}').message, 'unterminated string starting at 6')
    assert.equal(parseError('{{ x }} {{ y }').message, 'unexpected "}" at 14, expected "|" or "}}"')
  })

  test('names the position of an unexpected character', () => {
    const err = parseError('echo {{ svc || shell }}')
    assert.equal(err.message, 'unexpected "|" at 14, expected a filter (shell, powershell, json, default "…", trim, upper or lower)')
    assert.equal(err.position, 14)
    assert.equal(err.code, 'VALIDATION')
    assert.equal(err.path, undefined)
    assert.match(parseError('{{ }}').message, /^empty expression at 1$/)
    assert.match(parseError('{{ | shell }}').message, /^unexpected "\|" at 4, expected a parameter name/)
    assert.match(parseError('{{ svc shell }}').message, /^unexpected "s" at 8, expected "\|" or "}}"/)
    assert.match(parseError('{{ a.b. }}').message, /^unexpected " " at 8, expected a name or index after "\."/)
    assert.match(parseError('{{ a[0] }}').message, /^unexpected "\[" at 5/)
    assert.match(parseError('{{ 1abc }}').message, /^unexpected "1" at 4/)
    assert.match(parseError('{{ "a\\nb" }}').message, /^invalid escape at 6/)
  })

  test('rejects unknown filters and a default without a string', () => {
    assert.match(parseError('{{ svc | bash }}').message, /^unknown filter "bash" at 10, expected shell, powershell/)
    assert.match(parseError('{{ svc | default }}').message, /^unexpected "}" at 18, expected a "string" after default/)
    assert.match(parseError('{{ svc | default x }}').message, /^unexpected "x" at 18/)
  })

  test('rejects roots without the parts they need', () => {
    assert.match(parseError('{{ params }}').message, /^"params" at 4 needs a parameter name/)
    assert.match(parseError('{{ target }}').message, /^"target" at 4 needs a field/)
    assert.match(parseError('{{ steps.s1 }}').message, /^"steps" at 4 needs a step id and a field/)
    assert.match(parseError('{{ secret }}').message, /^unexpected "}" at 11, expected a credential name/)
    assert.match(parseError('{{ secret "db" }}').message, /expected a credential field name/)
    assert.match(parseError('{{ secret "" "x" }}').message, /^empty credential name at 11/)
  })

  test('rejects prototype paths anywhere in a path', () => {
    for (const source of [
      '{{ __proto__ }}',
      '{{ constructor }}',
      '{{ params.__proto__ }}',
      '{{ params.svc.constructor.prototype }}',
      '{{ target.facts.__proto__.polluted }}',
      '{{ steps.s1.json.constructor }}',
      '{{ steps.__proto__.stdout }}',
    ]) {
      assert.match(parseError(source).message, /^forbidden path segment "(__proto__|constructor|prototype)" at \d+$/, source)
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })
})

describe('parameters', () => {
  test('reads a bare name as shorthand for params.<name>', () => {
    assert.equal(render('{{ svc }}'), 'nginx')
    assert.equal(render('{{ params.svc }}'), 'nginx')
    assert.deepEqual(templateReferences('{{ svc }} {{ params.svc }}'), [{ kind: 'param', name: 'svc' }])
  })

  test('renders numbers, booleans and objects', () => {
    assert.equal(render('{{ count }}/{{ enabled }}'), '3/true')
    assert.equal(render('{{ cfg }}'), '{"port":8080,"hosts":["a","b"]}')
    assert.equal(render('{{ cfg.port }} {{ params.cfg.hosts.1 }}'), '8080 b')
  })

  test('fails on a parameter that is not set or null, unless a default follows', () => {
    assert.equal(renderError('{{ missing }}').message, 'parameter "missing" is not set')
    assert.equal(renderError('{{ nothing }}').message, 'params.nothing is null')
    assert.equal(renderError('{{ cfg.nope }}').message, 'parameter "cfg" has no "nope"')
    assert.equal(renderError('{{ cfg.hosts.length }}').message, 'parameter "cfg" has no "hosts.length"')
    assert.equal(renderError('{{ svc.length }}').message, 'parameter "svc" has no "length"')
    assert.equal(renderError('{{ missing }}').expression, '{{ missing }}')
  })

  test('does not reach inherited properties', () => {
    assert.equal(renderError('{{ toString }}').message, 'parameter "toString" is not set')
    assert.equal(renderError('{{ cfg.hasOwnProperty }}').message, 'parameter "cfg" has no "hasOwnProperty"')
    const params = JSON.parse('{"__proto__": {"x": "polluted"}, "o": {}}') as Record<string, unknown>
    assert.equal(renderError('{{ o.x }}', scope({ params })).message, 'parameter "o" has no "x"')
  })
})

describe('filters', () => {
  test('default applies to missing, null and empty values only', () => {
    assert.equal(render('{{ missing | default "x" }}'), 'x')
    assert.equal(render('{{ nothing | default "x" }}'), 'x')
    assert.equal(render('{{ empty | default "x" }}'), 'x')
    assert.equal(render('{{ svc | default "x" }}'), 'nginx')
    assert.equal(render('{{ count | default "x" }}'), '3')
    assert.equal(render('{{ target.tags.zone | default "" }}'), '')
    assert.equal(render('{{ missing | default "a b" | shell }}'), "'a b'")
    assert.equal(render('{{ missing | upper | default "X" }}'), 'X')
  })

  test('trim, upper and lower', () => {
    const s = scope({ params: { v: '  MiXed Case \n' } })
    assert.equal(render('[{{ v | trim }}]', s), '[MiXed Case]')
    assert.equal(render('{{ v | trim | upper }}', s), 'MIXED CASE')
    assert.equal(render('{{ v | trim | lower }}', s), 'mixed case')
    assert.equal(render('{{ v | trim | default "x" }}', scope({ params: { v: '   ' } })), 'x')
  })

  test('json stringifies the value', () => {
    assert.equal(render('{{ svc | json }}'), '"nginx"')
    assert.equal(render('{{ count | json }}'), '3')
    assert.equal(render('{{ nothing | json }}'), 'null')
    assert.equal(render('{{ cfg | json }}'), '{"port":8080,"hosts":["a","b"]}')
    assert.equal(render('{{ "a\\"b\n" | json }}'), '"a\\"b\\n"')
    assert.equal(render('{{ target.tags | json }}'), '{"env":"prod","k8s.io":"zone-a"}')
    assert.equal(renderError('{{ missing | json }}').message, 'parameter "missing" is not set')
  })

  test('shell quoting leaves nothing for the shell to interpret', () => {
    const hostile = [
      'x; rm -f /tmp/canary',
      '$(id)',
      '`id`',
      "it's",
      "'; echo pwned; '",
      'line one\nline two\n',
      '${HOME} $HOME \\ "double" * ? ~ & | > < # !',
      '',
      "''",
      'naïve ☃ 𝄞',
    ]
    for (const value of hostile) {
      const quoted = render('{{ v | shell }}', scope({ params: { v: value } }))
      assert.ok(quoted.startsWith("'") && quoted.endsWith("'"), quoted)
      throughShell(quoted, value)
    }
    assert.equal(shellQuote('x; rm -f /tmp/canary'), "'x; rm -f /tmp/canary'")
    assert.equal(shellQuote("it's"), "'it'\\''s'")
    assert.equal(shellQuote(''), "''")
    assert.equal(render('{{ count | shell }}'), "'3'")
  })

  test('shell refuses a NUL character, a missing and a null value', () => {
    assert.match(renderError('{{ v | shell }}', scope({ params: { v: 'a\0b' } })).message, /contains a NUL character/)
    assert.equal(renderError('{{ missing | shell }}').message, 'parameter "missing" is not set')
    assert.equal(renderError('{{ nothing | shell }}').message, 'params.nothing is null')
  })

  test('powershell quoting doubles ASCII and Unicode single quotes', () => {
    assert.equal(powershellQuote("'; Remove-Item x; '"), "'''; Remove-Item x; '''")
    assert.equal(powershellQuote('\u2018a\u2019b\u201Ac\u201Bd'), "'\u2018\u2018a\u2019\u2019b\u201A\u201Ac\u201B\u201Bd'")
    assert.equal(powershellQuote(''), "''")
    assert.equal(powershellQuote('$(Get-Process) `n "x"'), '\'$(Get-Process) `n "x"\'')
    assert.equal(render('{{ v | powershell }}', scope({ params: { v: "'; Remove-Item x; '" } })), "'''; Remove-Item x; '''")
  })
})

describe('target', () => {
  test('reads fields, tags and facts', () => {
    assert.equal(render('{{ target.id }} {{ target.name }} {{ target.address }} {{ target.os_type }}'), '6f1c1a52-0000-4000-8000-000000000001 web-1 10.0.0.5 linux')
    assert.equal(render('{{ target.tags.env }} {{ target.tags.k8s.io }}'), 'prod zone-a')
    assert.equal(render('{{ target.facts.cpu.count }} {{ target.facts.disks.0.name }}'), '4 sda')
  })

  test('fails on a missing tag or fact, naming the target', () => {
    assert.equal(renderError('{{ target.tags.zone }}').message, 'target web-1 has no tag "zone"')
    assert.equal(renderError('{{ target.facts.cpu.model }}').message, 'target web-1 has no fact "cpu.model"')
    assert.equal(renderError('{{ target.facts.disks.1.name }}').message, 'target web-1 has no fact "disks.1.name"')
    assert.equal(render('{{ target.tags.zone | default "none" }}'), 'none')
  })

  test('fails in a run without a target', () => {
    assert.equal(renderError('{{ target.name }}', scope({ target: null })).message, 'target.name is not available: this run has no target')
    assert.equal(render('{{ target.name | default "-" }}', scope({ target: null })), '-')
  })

  test('rejects an unknown field even with a default', () => {
    assert.equal(renderError('{{ target.nam | default "x" }}').message, 'unknown target field "nam"')
    assert.equal(renderError('{{ target.name.first }}').message, 'unknown target field "name.first"')
  })
})

describe('steps', () => {
  test('reads output, exit code, status, JSON paths and results', () => {
    assert.equal(render('{{ steps.s1.stderr }} {{ steps.s1.exit_code }} {{ steps.s1.status }}'), 'warn 0 succeeded')
    assert.equal(render('{{ steps.s1.json.items.0.name }},{{ steps.s1.json.items.1.name }}'), 'first,second')
    assert.equal(render('{{ steps.s1.json.ok }} {{ steps.s1.json.items.0 }}'), 'true {"name":"first"}')
    assert.equal(render('{{ steps.s1.result.rows }} {{ steps.s1.result }}'), '2 {"rows":2}')
    assert.equal(render('{{ steps.s2.stdout | shell }}'), "'not json'")
  })

  test('fails on a step that did not run, bad JSON, an absent path or a null exit code', () => {
    assert.equal(renderError('{{ steps.s3.stdout }}').message, 'step "s3" has not run')
    assert.equal(renderError('{{ steps.s2.json.a }}').message, 'stdout of step "s2" is not valid JSON')
    assert.equal(renderError('{{ steps.s1.json.items.2.name }}').message, 'JSON output of step "s1" has no "items.2.name"')
    assert.equal(renderError('{{ steps.s1.json.none }}').message, 'steps.s1.json.none is null')
    assert.equal(renderError('{{ steps.s2.result }}').message, 'step "s2" has no result')
    assert.equal(renderError('{{ steps.s2.exit_code }}').message, 'steps.s2.exit_code is null')
    assert.equal(render('{{ steps.s2.exit_code | default "none" }}'), 'none')
    assert.equal(render('{{ steps.s2.json.a | default "{}" }}'), '{}')
    assert.equal(renderError('{{ steps.s1.stdot }}').message, 'unknown field "stdot" of step "s1"')
  })
})

describe('secrets', () => {
  test('reads a credential field', () => {
    assert.equal(render('{{ secret "db" "user" }}:{{secret"db""password"|shell}}'), "admin:'p@ss'\\''word'")
    assert.deepEqual(templateReferences('{{ secret "db" "password" }}'), [{ kind: 'secret', credential: 'db', field: 'password' }])
  })

  test('lists every rendered form of a secret, for the masker', () => {
    assert.deepEqual(secretForms("it's \"x\""), ["it's \"x\"", `'it'\\''s "x"'`, `'it''s "x"'`, `it's \\"x\\"`, `IT'S "X"`])
    assert.deepEqual(secretForms('plain'), ['plain', "'plain'", 'PLAIN'])
    const password = "p@ss'word"
    const rendered = render('{{ secret "db" "password" | shell }} {{ secret "db" "password" | json }}')
    assert.equal(rendered, `'p@ss'\\''word' "p@ss'word"`)
    assert.equal(new SecretMasker(secretForms(password)).maskAll(Buffer.from(rendered)).toString(), '**** "****"')
    // The plain value alone misses the shell-quoted form.
    assert.equal(new SecretMasker([password]).maskAll(Buffer.from(rendered)).toString(), `'p@ss'\\''word' "****"`)
  })

  test('fails on a credential or field not in scope', () => {
    assert.equal(renderError('{{ secret "api" "token" }}').message, 'credential "api" is not available to this run')
    assert.equal(renderError('{{ secret "db" "token" }}').message, 'credential "db" has no field "token"')
    assert.equal(render('{{ secret "api" "token" | default "anonymous" }}'), 'anonymous')
  })
})

describe('references and checks', () => {
  test('lists each reference once, in order', () => {
    const source = '{{ svc }} {{ target.tags.env }} {{ steps.s1.json.items.0.name }} {{ svc | shell }} {{ "lit" }} {{ target.name }}'
    assert.deepEqual(templateReferences(source), [
      { kind: 'param', name: 'svc' },
      { kind: 'target', field: 'tags.env' },
      { kind: 'step', stepId: 's1', field: 'json.items.0.name' },
      { kind: 'target', field: 'name' },
    ])
    assert.deepEqual(templateReferences('plain'), [])
  })

  test('checkTemplate reports every problem at once', () => {
    const known = { params: new Set(['svc']), earlierSteps: new Set(['s1']) }
    const source = '{{ svc2 }} {{ steps.s9.stdout }} {{ target.nam }} {{ steps.s1.stdot }} {{ svc }} {{ svc2 | shell }} {{ secret "x" "y" }}'
    assert.deepEqual(checkTemplate(source, known), [
      'unknown parameter "svc2"',
      'step "s9" is not an earlier step',
      'unknown target field "nam"',
      'unknown field "stdot" of step "s1"',
    ])
    assert.deepEqual(checkTemplate('{{ svc }} {{ steps.s1.json.a.b }} {{ target.tags.any }} {{ target.facts.x }}', known), [])
  })

  test('checkTemplate tells unknown steps from later ones and checks credentials when given', () => {
    const known = { params: new Set<string>(), earlierSteps: new Set(['s1']), steps: new Set(['s1', 's2', 's3']), credentials: new Set(['db']) }
    assert.deepEqual(checkTemplate('{{ steps.s3.stdout }} {{ steps.nope.stdout }} {{ secret "db" "x" }} {{ secret "api" "x" }}', known), [
      'step "s3" is not an earlier step',
      'unknown step "nope"',
      'unknown credential "api"',
    ])
  })

  test('checkTemplate rejects target references where there is no target', () => {
    const known = { params: new Set(['env']), earlierSteps: new Set<string>(), noTarget: true }
    assert.deepEqual(checkTemplate('env={{ env }},{{ target.tags.env }}', known), ['target.tags.env is not available here: there is no target yet'])
  })

  test('checkTemplate returns a parse error as a message', () => {
    const known = { params: new Set(['svc']), earlierSteps: new Set<string>() }
    assert.deepEqual(checkTemplate('{{ svc | nope }}', known), ['unknown filter "nope" at 10, expected shell, powershell, json, default "…", trim, upper or lower'])
    assert.deepEqual(checkTemplate('{{ svc', known), ['unclosed "{{" at 1'])
  })
})

describe('renderDeep', () => {
  test('renders every string in objects and arrays, leaving keys and other values alone', () => {
    const input = {
      url: 'https://{{ target.address }}/api',
      '{{ svc }}': 'key stays',
      headers: { Authorization: 'Bearer {{ secret "db" "password" }}' },
      args: ['{{ svc }}', 1, true, null, { deep: ['{{ count }}'] }],
      plain: 'no braces',
    }
    const before = structuredClone(input)
    assert.deepEqual(renderDeep(input, scope()), {
      url: 'https://10.0.0.5/api',
      '{{ svc }}': 'key stays',
      headers: { Authorization: "Bearer p@ss'word" },
      args: ['nginx', 1, true, null, { deep: ['3'] }],
      plain: 'no braces',
    })
    assert.deepEqual(input, before)
    assert.equal(renderDeep('{{ svc }}', scope()), 'nginx')
    assert.equal(renderDeep(42, scope()), 42)
  })

  test('keeps a "__proto__" key a plain key', () => {
    const input = JSON.parse('{"__proto__": {"polluted": "{{ svc }}"}}') as unknown
    const out = renderDeep(input, scope()) as Record<string, unknown>
    assert.deepEqual(Object.getOwnPropertyDescriptor(out, '__proto__')?.value, { polluted: 'nginx' })
    assert.equal(Object.getPrototypeOf(out), Object.prototype)
    assert.equal(({} as Record<string, unknown>).polluted, undefined)
  })

  test('sets the path of a failing string', () => {
    try {
      renderDeep({ headers: { 'X-Env': '{{ target.tags.zone }}' }, args: ['ok', '{{ missing }}'] }, scope())
      assert.fail('expected an error')
    } catch (err) {
      assert.ok(err instanceof TemplateRenderError)
      assert.equal(err.path, 'headers.X-Env')
    }
    try {
      renderDeep({ args: ['ok', '{{ missing'] }, scope())
      assert.fail('expected an error')
    } catch (err) {
      assert.ok(err instanceof TemplateError)
      assert.equal(err.path, 'args[1]')
    }
  })
})

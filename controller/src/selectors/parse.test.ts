import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { ValidationError } from '../errors.ts'
import { formatSelector, MAX_SELECTOR_LENGTH, MAX_SELECTOR_TERMS, parseSelector, SelectorError, type SelectorAst, type SelectorTerm } from './parse.ts'

const one = (text: string): SelectorTerm[] => {
  const ast = parseSelector(text)
  assert.equal(ast.alternatives.length, 1)
  return ast.alternatives[0]!
}

function rejects(text: string, message: string, position?: number): void {
  assert.throws(
    () => parseSelector(text),
    (err: unknown) => {
      assert.ok(err instanceof SelectorError)
      assert.ok(err instanceof ValidationError)
      assert.equal(err.code, 'VALIDATION')
      assert.equal(err.name, 'SelectorError')
      assert.equal(err.message, message)
      assert.equal(err.position, position)
      return true
    },
    text,
  )
}

describe('parseSelector: valid forms', () => {
  test('the headline selector is an intersection of a built-in field and a tag', () => {
    assert.deepEqual(one('os=linux,env=prod'), [
      { kind: 'os', op: '=', value: 'linux' },
      { kind: 'tag', key: 'env', op: '=', value: 'prod' },
    ])
  })

  test('"|" separates alternatives (union), "," terms (intersection)', () => {
    assert.deepEqual(parseSelector('env=prod,role!=db | group:canary'), {
      alternatives: [
        [
          { kind: 'tag', key: 'env', op: '=', value: 'prod' },
          { kind: 'tag', key: 'role', op: '!=', value: 'db' },
        ],
        [{ kind: 'group', name: 'canary', negated: false }],
      ],
    })
  })

  test('every kind of term', () => {
    assert.deepEqual(
      one('*, id:0F8FAD5B-D9CB-469F-A165-70867728950E, name:web-*, group:prod, backup, !legacy, tag:os=x, os!=windows, connection=WinRM, enabled=false, address=10.0.*'),
      [
        { kind: 'all' },
        { kind: 'id', id: '0f8fad5b-d9cb-469f-a165-70867728950e', negated: false },
        { kind: 'name', pattern: 'web-*', negated: false },
        { kind: 'group', name: 'prod', negated: false },
        { kind: 'tag_exists', key: 'backup', negated: false },
        { kind: 'tag_exists', key: 'legacy', negated: true },
        { kind: 'tag', key: 'os', op: '=', value: 'x' },
        { kind: 'os', op: '!=', value: 'windows' },
        { kind: 'connection', op: '=', value: 'winrm' },
        { kind: 'enabled', op: '=', value: false },
        { kind: 'address', op: '=', pattern: '10.0.*' },
      ],
    )
  })

  test('"!" negates id:, name:, group: and tag presence', () => {
    assert.deepEqual(one('!id:0f8fad5b-d9cb-469f-a165-70867728950e,!name:db-*,!group:x,!tag:os'), [
      { kind: 'id', id: '0f8fad5b-d9cb-469f-a165-70867728950e', negated: true },
      { kind: 'name', pattern: 'db-*', negated: true },
      { kind: 'group', name: 'x', negated: true },
      { kind: 'tag_exists', key: 'os', negated: true },
    ])
  })

  test('whitespace around tokens is ignored', () => {
    assert.deepEqual(parseSelector('  os = linux ,\tenv != prod\n|  ! backup , name: web  , tag: role '), parseSelector('os=linux,env!=prod|!backup,name:web,tag:role'))
  })

  test('keys take letters, digits and _ . / -', () => {
    assert.deepEqual(one('k8s.io/role-name_x=a'), [{ kind: 'tag', key: 'k8s.io/role-name_x', op: '=', value: 'a' }])
  })

  test('a key that is not followed by ":" is a tag, even if it reads like a prefix', () => {
    assert.deepEqual(one('name=web,group'), [
      { kind: 'tag', key: 'name', op: '=', value: 'web' },
      { kind: 'tag_exists', key: 'group', negated: false },
    ])
  })

  test('field names and prefixes are lower case; other spellings are tag keys', () => {
    assert.deepEqual(one('OS=linux,Enabled'), [
      { kind: 'tag', key: 'OS', op: '=', value: 'linux' },
      { kind: 'tag_exists', key: 'Enabled', negated: false },
    ])
  })

  test('built-in values are case-insensitive; tag values keep their case', () => {
    assert.deepEqual(one('os=LINUX,enabled=True,env=Prod'), [
      { kind: 'os', op: '=', value: 'linux' },
      { kind: 'enabled', op: '=', value: true },
      { kind: 'tag', key: 'env', op: '=', value: 'Prod' },
    ])
  })

  test('bare values may hold ":", "*", "%", "\\", "(" and non-ASCII', () => {
    assert.deepEqual(one('url=http://x:8080/*,p=50%,dom=CORP\\host,g=(a),city=Zürich'), [
      { kind: 'tag', key: 'url', op: '=', value: 'http://x:8080/*' },
      { kind: 'tag', key: 'p', op: '=', value: '50%' },
      { kind: 'tag', key: 'dom', op: '=', value: 'CORP\\host' },
      { kind: 'tag', key: 'g', op: '=', value: '(a)' },
      { kind: 'tag', key: 'city', op: '=', value: 'Zürich' },
    ])
  })
})

describe('parseSelector: quoting', () => {
  test('double quotes hold , | = ! and spaces', () => {
    assert.deepEqual(one('group:"Prod DB, EU",note="a|b=c!d"'), [
      { kind: 'group', name: 'Prod DB, EU', negated: false },
      { kind: 'tag', key: 'note', op: '=', value: 'a|b=c!d' },
    ])
  })

  test('\\" and \\\\ are the only escapes', () => {
    assert.deepEqual(one('q="say \\"hi\\" C:\\\\x"'), [{ kind: 'tag', key: 'q', op: '=', value: 'say "hi" C:\\x' }])
  })

  test('an empty quoted value is a value', () => {
    assert.deepEqual(one('env=""'), [{ kind: 'tag', key: 'env', op: '=', value: '' }])
  })

  test('a hostile value is just a value', () => {
    assert.deepEqual(one(`env="x'); drop table target; --"`), [{ kind: 'tag', key: 'env', op: '=', value: "x'); drop table target; --" }])
  })
})

describe('parseSelector: errors name the position and what was expected', () => {
  const cases: [string, string, number?][] = [
    ['', 'selector: unexpected end of selector at 1, expected a term', 1],
    ['   ', 'selector: unexpected end of selector at 4, expected a term', 4],
    ['os=linux,env=prod,,x', 'selector: unexpected "," at 19, expected a term', 19],
    ['env=prod|', 'selector: unexpected end of selector at 10, expected a term', 10],
    ['|env=prod', 'selector: unexpected "|" at 1, expected a term', 1],
    ['env=,x', 'selector: unexpected "," at 5, expected a value', 5],
    ['env=', 'selector: unexpected end of selector at 5, expected a value', 5],
    ['env==x', 'selector: unexpected "=" at 5, expected a value', 5],
    ['env=prod x', 'selector: unexpected "x" at 10, expected "," or "|" or end of selector', 10],
    ['env!x', 'selector: unexpected "x" at 5, expected "=" after "!"', 5],
    ['env+=x', 'selector: unexpected "+" at 4, expected "," or "|" or end of selector', 4],
    ['"env"=x', 'selector: unexpected """ at 1, expected a term', 1],
    ['!*', 'selector: unexpected "*" at 2, expected a term to negate', 2],
    ['!', 'selector: unexpected end of selector at 2, expected a term to negate', 2],
    ['tag:', 'selector: unexpected end of selector at 5, expected a tag key', 5],
    ['tag:"x"', 'selector: unexpected """ at 5, expected a tag key', 5],
    ['!env=prod', 'selector: unexpected "=" at 5 after a negated term, expected "," or "|" or end of selector (write env!=value)', 5],
    ['foo:bar', 'selector: unknown prefix "foo:" at 1, expected id:, name:, group: or tag:', 1],
    ['a, Name:web', 'selector: unknown prefix "Name:" at 4, expected id:, name:, group: or tag:', 4],
    ['name:', 'selector: unexpected end of selector at 6, expected a value', 6],
    ['group:,x', 'selector: unexpected "," at 7, expected a value', 7],
    ['id:web-01', 'selector: invalid id "web-01" at 4, expected a UUID', 4],
    ['os=linx', 'selector: invalid os "linx" at 4, expected one of windows, linux, unix, network, other', 4],
    ['connection=telnet', 'selector: invalid connection "telnet" at 12, expected one of agent, ssh, winrm', 12],
    ['enabled=yes', 'selector: invalid enabled "yes" at 9, expected one of true, false', 9],
    ['os', 'selector: built-in field os at 1 needs a value, expected "=" or "!=" at 3', 3],
    ['x,!enabled', 'selector: built-in field enabled at 4 needs a value, expected "=" or "!=" at 11', 11],
    ['name:"web', 'selector: unterminated quoted value starting at 6, expected a closing "', 6],
    ['name:"a\\x"', 'selector: invalid escape "\\x" at 8, expected \\" or \\\\', 8],
    ['name:"a\\', 'selector: invalid escape end of selector at 8, expected \\" or \\\\', 8],
    ['env=a\u0000b', 'selector: invalid character U+0000 at 6', 6],
    ['env="a\u0007"', 'selector: invalid character U+0007 at 7', 7],
  ]
  for (const [text, message, position] of cases) {
    test(`${JSON.stringify(text)} → ${message}`, () => rejects(text, message, position))
  }

  test(`longer than ${MAX_SELECTOR_LENGTH} characters`, () => {
    parseSelector(`env=${'x'.repeat(MAX_SELECTOR_LENGTH - 4)}`)
    rejects(`env=${'x'.repeat(MAX_SELECTOR_LENGTH - 3)}`, `selector: longer than ${MAX_SELECTOR_LENGTH} characters`)
  })

  test(`more than ${MAX_SELECTOR_TERMS} terms, counted across alternatives`, () => {
    const terms = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`)
    parseSelector(terms(MAX_SELECTOR_TERMS).join(','))
    const text = `${terms(60).join(',')}|${terms(41).join(',')}`
    rejects(text, `selector: more than ${MAX_SELECTOR_TERMS} terms`, text.lastIndexOf('k40') + 1)
  })

  test('details carry the path and position for the API error body', () => {
    try {
      parseSelector('env=prod,,')
      assert.fail('should throw')
    } catch (err) {
      assert.ok(err instanceof SelectorError)
      assert.deepEqual(err.details, [{ path: 'selector', message: 'unexpected "," at 10, expected a term', position: 10 }])
      assert.equal(err.expected, 'a term')
    }
  })
})

describe('formatSelector', () => {
  const texts = [
    'os=linux,env=prod',
    'env=prod,role!=db | name:web-* | group:"Prod DB"',
    '*',
    '!id:0f8fad5b-d9cb-469f-a165-70867728950e,!name:db-*,!group:x,!backup,tag:os,!tag:address,tag:enabled=yes',
    'connection!=agent,enabled=true,address!="10.0.*"',
    'q="say \\"hi\\" C:\\\\x",e="",w="a b",c="a,b|c=d!e"',
    'dom=CORP\\host,url=http://x/*',
  ]
  for (const text of texts) {
    test(`round-trips ${text}`, () => {
      const ast = parseSelector(text)
      const formatted = formatSelector(ast)
      assert.deepEqual(parseSelector(formatted), ast)
      assert.equal(formatSelector(parseSelector(formatted)), formatted, 'formatting is canonical')
    })
  }

  test('writes the canonical form', () => {
    assert.equal(formatSelector(parseSelector('  os = Linux , env=prod|  ! backup ')), 'os=linux,env=prod | !backup')
    assert.equal(formatSelector(parseSelector('tag:env=x,tag:os=y,address=a')), 'env=x,tag:os=y,address=a')
  })

  test('quotes whatever a bare value cannot hold', () => {
    const ast: SelectorAst = {
      alternatives: [[{ kind: 'tag', key: 'k', op: '=', value: `a "b", c|d=e!f\\g` }, { kind: 'name', pattern: '', negated: false }]],
    }
    assert.equal(formatSelector(ast), 'k="a \\"b\\", c|d=e!f\\\\g",name:""')
    assert.deepEqual(parseSelector(formatSelector(ast)), ast)
  })
})

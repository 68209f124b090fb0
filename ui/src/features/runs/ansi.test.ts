import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { applySgr, paletteHex, parseAnsi, spanLook, stripAnsi } from './ansi.ts'

describe('parseAnsi', () => {
  test('plain text is one unstyled segment', () => {
    assert.deepEqual(parseAnsi('hello world', null), { segments: [{ text: 'hello world', style: null }], plain: 'hello world', end: null })
  })

  test('16 colours, bold and reset split the text into styled segments', () => {
    const p = parseAnsi('a\x1b[1;31mred\x1b[0m b \x1b[92mgreen', null)
    assert.equal(p.plain, 'ared b green')
    assert.deepEqual(
      p.segments.map((s) => [s.text, s.style]),
      [
        ['a', null],
        ['red', { bold: true, fg: 1 }],
        [' b ', null],
        ['green', { fg: 10 }],
      ],
    )
    assert.deepEqual(p.end, { fg: 10 }, 'the colour carries into the next line')
    assert.deepEqual(parseAnsi('still green\x1b[m', p.end).segments, [{ text: 'still green', style: { fg: 10 } }])
  })

  test('256-colour and truecolor, in ; and : forms', () => {
    assert.deepEqual(applySgr(null, '38;5;208'), { fg: 208 })
    assert.deepEqual(applySgr(null, '48;2;255;128;0'), { bg: '#ff8000' })
    assert.deepEqual(applySgr(null, '38:2::1:2:3'), { fg: '#010203' })
    assert.deepEqual(applySgr(null, '38:5:12'), { fg: 12 })
    assert.deepEqual(applySgr({ fg: 3, bold: true }, '39;22'), null)
    assert.equal(paletteHex(196), '#ff0000')
    assert.equal(paletteHex(232), '#080808')
    assert.equal(paletteHex(16), '#000000')
  })

  test('other escape sequences, OSC titles and hyperlinks are dropped; CR keeps what follows it', () => {
    assert.equal(stripAnsi('\x1b[2K\x1b[1Gdone\x1b]0;title\x07!'), 'done!')
    assert.equal(stripAnsi('\x1b]8;;https://x.example\x1b\\link\x1b]8;;\x1b\\'), 'link')
    assert.equal(stripAnsi(' 10%\r 50%\r100%'), '100%')
    assert.equal(stripAnsi('a\x07b\x00c\td'), 'abc\td')
    assert.equal(stripAnsi('broken \x1b['), 'broken ')
  })

  test('spanLook: basic colours as classes, others as values, inverse swaps', () => {
    assert.deepEqual(spanLook({ fg: 1, bold: true }), { cls: 'ansi-fg-1 ansi-bold' })
    assert.deepEqual(spanLook({ fg: 208, bg: '#102030' }), { cls: '', color: paletteHex(208), background: '#102030' })
    assert.deepEqual(spanLook({ inverse: true }), { cls: 'ansi-fg-inverse ansi-bg-inverse' })
    assert.deepEqual(spanLook({ inverse: true, fg: 2 }), { cls: 'ansi-fg-inverse ansi-bg-2' })
    assert.deepEqual(spanLook({ fg: 0 }), { cls: 'ansi-fg-0' })
  })
})

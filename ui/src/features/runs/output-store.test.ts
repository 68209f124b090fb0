import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { OutputStore } from './output-store.ts'

const enc = (s: string) => new TextEncoder().encode(s)
const lines = (o: OutputStore) => o.view.map((i) => o.text[i])

describe('OutputStore', () => {
  test('splits chunks into lines, completes a line split across chunks in place, and a UTF-8 sequence split across chunks', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('one\ntw'))
    o.commit()
    assert.deepEqual(lines(o), ['one', 'tw'])
    assert.ok(o.isOpen(1))
    const euro = enc('o €\nthree\r\n')
    o.append('a', 'stdout', euro.subarray(0, 4))
    o.append('a', 'stdout', euro.subarray(4))
    assert.deepEqual(o.commit(), [1], 'the unfinished line changed in place')
    assert.deepEqual(lines(o), ['one', 'two €', 'three'])
    assert.equal(o.isOpen(1), false)
  })

  test('streams and step runs interleave; an unfinished line of one is continued in place while another writes', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('progress...'))
    o.append('b', 'stderr', enc('oops\n'))
    o.append('a', 'stdout', enc(' done\n'))
    o.commit()
    assert.deepEqual(lines(o), ['progress... done', 'oops'])
    assert.deepEqual(o.sourceOf(1), { stepRunId: 'b', stream: 'stderr' })
  })

  test('colour state carries across lines of the same stream only', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('\x1b[31mred\nstill red\x1b[0m\nplain\n'))
    o.append('a', 'stderr', enc('other stream\n'))
    assert.deepEqual(o.text, ['red', 'still red', 'plain', 'other stream'])
    assert.deepEqual(o.styled[1], { raw: 'still red\x1b[0m', start: { fg: 1 } })
    assert.equal(o.styled[2], undefined)
    assert.equal(o.styled[3], undefined)
  })

  test('filters by stream and step run; the view grows as lines arrive', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('a1\n'))
    o.append('a', 'stderr', enc('a-err\n'))
    o.append('b', 'stdout', enc('b1\n'))
    o.setFilter({ stepRun: null, stdout: true, stderr: false })
    assert.deepEqual(lines(o), ['a1', 'b1'])
    o.append('b', 'stderr', enc('b-err\n'))
    o.append('b', 'stdout', enc('b2\n'))
    o.commit()
    assert.deepEqual(lines(o), ['a1', 'b1', 'b2'])
    o.setFilter({ stepRun: (id) => id === 'b', stdout: true, stderr: true })
    assert.deepEqual(lines(o), ['b1', 'b-err', 'b2'])
    o.append('c', 'stdout', enc('c1\n'))
    o.commit()
    assert.deepEqual(lines(o), ['b1', 'b-err', 'b2'], 'a new step run outside the filter stays hidden')
  })

  test('search is case-insensitive, literal, over shown lines, and follows appends and in-place changes', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('Error: one\nfine\nan error (x.y)\npartial'))
    o.commit()
    o.setQuery('ERROR')
    assert.deepEqual(o.matches, [0, 2])
    o.setQuery('(x.y)')
    assert.deepEqual(o.matches, [2])
    o.setQuery('error')
    o.append('a', 'stdout', enc(' error\nerror again\n'))
    o.commit()
    assert.deepEqual(o.matches, [0, 2, 3, 4])
    o.setFilter({ stepRun: null, stdout: false, stderr: true })
    assert.deepEqual(o.matches, [])
    o.setQuery('')
    assert.equal(o.searching, false)
  })

  test('drops the oldest lines past the cap and says how many', () => {
    const o = new OutputStore({ maxLines: 100, maxChars: 1e9, maxLineChars: 1000 })
    let text = ''
    for (let i = 0; i < 150; i++) text += `line ${i}\n`
    o.append('a', 'stdout', enc(text))
    o.commit()
    assert.ok(o.length <= 100)
    assert.equal(o.dropped + o.length, 150)
    assert.equal(o.text.at(-1), 'line 149')
    assert.equal(o.text[0], `line ${o.dropped}`)
    assert.equal(o.view.length, o.length)
    assert.ok(o.generation > 0)
  })

  test('an endless line is cut at maxLineChars', () => {
    const o = new OutputStore({ maxLines: 100, maxChars: 1e9, maxLineChars: 10 })
    o.append('a', 'stdout', enc('0123456789abc'))
    o.append('a', 'stdout', enc('def\n'))
    o.commit()
    assert.deepEqual(lines(o), ['0123456789abc', 'def'])
  })

  test('finish flushes an unfinished line; a notice is a line of its own', () => {
    const o = new OutputStore()
    o.append('a', 'stdout', enc('no newline'))
    o.finish('a')
    o.notice('a', '[12 bytes lost]')
    o.commit()
    assert.deepEqual(lines(o), ['no newline', '[12 bytes lost]'])
    assert.equal(o.isOpen(0), false)
    assert.equal(o.sourceOf(1).stream, 'system')
  })

  test('a million lines append, filter and search (timings printed, not asserted)', () => {
    const o = new OutputStore()
    let chunk = ''
    for (let i = 0; i < 10_000; i++) chunk += `${i % 7 === 0 ? '\x1b[32m' : ''}line ${i} of a long log ${i % 7 === 0 ? '\x1b[0m' : ''}\n`
    const bytes = enc(chunk)
    const t0 = performance.now()
    for (let k = 0; k < 100; k++) o.append(k % 2 ? 'a' : 'b', k % 3 ? 'stdout' : 'stderr', bytes)
    o.commit()
    const t1 = performance.now()
    o.setQuery('line 9999 ')
    const t2 = performance.now()
    o.setFilter({ stepRun: null, stdout: true, stderr: false })
    const t3 = performance.now()
    assert.equal(o.length, 1_000_000)
    assert.equal(o.view.length, 660_000)
    console.log(`# 1M lines: append ${Math.round(t1 - t0)} ms, search ${Math.round(t2 - t1)} ms, filter+search ${Math.round(t3 - t2)} ms`)
  })
})

import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { MASK, SecretMasker, type MaskingStream } from './masking.ts'
import { mulberry32 } from '../../test/harness/prng.ts'

const b = (s: string) => Buffer.from(s, 'utf8')

/** Feeds the chunks and returns everything emitted, end() included. */
function feed(stream: MaskingStream, chunks: Buffer[]): Buffer {
  const out = chunks.map((c) => stream.push(c))
  out.push(stream.end())
  return Buffer.concat(out)
}

function bytewise(data: Buffer): Buffer[] {
  return [...data].map((byte) => Buffer.from([byte]))
}

/** Reference implementation: at each position the longest secret that starts there, else one byte. */
function naiveMask(data: Buffer, secrets: Buffer[]): Buffer {
  const sorted = [...secrets].sort((x, y) => y.length - x.length)
  const out: Buffer[] = []
  let i = 0
  while (i < data.length) {
    const hit = sorted.find((s) => i + s.length <= data.length && data.subarray(i, i + s.length).equals(s))
    if (hit) {
      out.push(b(MASK))
      i += hit.length
    } else {
      out.push(data.subarray(i, i + 1))
      i++
    }
  }
  return Buffer.concat(out)
}

describe('maskAll', () => {
  test('masks every occurrence with the same marker whatever the length', () => {
    const m = new SecretMasker(['hunter2', 'a-much-longer-secret-value'])
    assert.equal(m.maskAll(b('pw=hunter2 token=a-much-longer-secret-value hunter2')).toString(), 'pw=**** token=**** ****')
    assert.equal(m.maskAll(b('nothing here')).toString(), 'nothing here')
    assert.equal(m.maskAll(b('hunter2hunter2')).toString(), '********')
  })

  test('accepts secrets as strings or Buffers and ignores empty, short and duplicate ones', () => {
    const m = new SecretMasker(['', 'ab', 'x', 'abc', 'abc', b('abc'), b('def')])
    assert.equal(m.size, 2)
    assert.equal(m.maskAll(b('ab x abc def')).toString(), 'ab x **** ****')
    m.add('')
    m.add('zz')
    assert.equal(m.size, 2)
    assert.equal(new SecretMasker().maskAll(b('abc')).toString(), 'abc')
  })

  test('prefers the longest secret at a position', () => {
    const m = new SecretMasker(['abc', 'abcdef'])
    assert.equal(m.maskAll(b('xabcdefx abcx')).toString(), 'x****x ****x')
  })

  test('masks the first of two overlapping secrets', () => {
    const m = new SecretMasker(['abcdef', 'cdefgh'])
    assert.equal(m.maskAll(b('abcdefgh')).toString(), '****gh')
    assert.equal(m.maskAll(b('xcdefgh abcdef')).toString(), 'x**** ****')
  })

  test('masks each line of a multi-line secret on its own', () => {
    const key = '-----BEGIN KEY-----\r\nMIIEpAIBAAKCAQEA\r\nshort\r\nQWERTYUIOPASDFGH\r\n-----END KEY-----\r\n'
    const m = new SecretMasker([key])
    // The key, the key without its trailing newline, and its 4 lines of at least 8 bytes.
    assert.equal(m.size, 6)
    assert.equal(m.maskAll(b(`cat:\n${key}done`)).toString(), 'cat:\n****done')
    // Reflowed with \n only: each long line is masked, the short one ("short") is not.
    const reflowed = key.replaceAll('\r\n', '\n')
    assert.equal(m.maskAll(b(reflowed)).toString(), '****\n****\nshort\n****\n****\n')
    assert.equal(m.maskAll(b('x MIIEpAIBAAKCAQEA y')).toString(), 'x **** y')
  })

  test('masks a secret read with a trailing newline when printed without it', () => {
    const m = new SecretMasker(['s3cret\n'])
    assert.equal(m.maskAll(b('pw: s3cret!')).toString(), 'pw: ****!')
  })

  test('works on bytes that are not valid UTF-8', () => {
    const secret = Buffer.from([0xff, 0x00, 0xfe, 0x80])
    const m = new SecretMasker([secret])
    assert.deepEqual(m.maskAll(Buffer.concat([b('a'), secret, b('b')])), b('a****b'))
  })
})

describe('MaskingStream', () => {
  test('masks a secret within one chunk', () => {
    const s = new SecretMasker(['hunter2']).stream()
    assert.equal(s.push(b('pw=hunter2 ok\n')).toString(), 'pw=**** ok\n')
    assert.equal(s.end().length, 0)
  })

  test('masks a secret split across two chunks', () => {
    const s = new SecretMasker(['hunter2']).stream()
    assert.equal(s.push(b('pw=hun')).toString(), 'pw=')
    assert.equal(s.push(b('ter2 ok')).toString(), '**** ok')
    assert.equal(s.end().toString(), '')
  })

  test('masks a secret split across many chunks', () => {
    const s = new SecretMasker(['correct-horse-battery']).stream()
    const out = feed(s, ['x corr', 'ect-', 'hor', 'se-batt', 'ery y'].map(b))
    assert.equal(out.toString(), 'x **** y')
  })

  test('byte-by-byte feeding of a text with several secrets equals maskAll of the whole', () => {
    const m = new SecretMasker(['alpha-secret', 'beta', 'alpha', 'gamma-ray-δ'])
    const text = b('start alpha-secret mid alphabet beta gamma-ray-δ gamma-ray-x alph end beta')
    const out = feed(m.stream(), bytewise(text))
    assert.deepEqual(out, m.maskAll(text))
    assert.equal(out.toString(), 'start **** mid ****bet **** **** gamma-ray-x alph end ****')
  })

  test('holds nothing back when the tail cannot start a secret', () => {
    const s = new SecretMasker(['secret']).stream()
    assert.equal(s.push(b('hello wor')).toString(), 'hello wor')
    assert.equal(s.push(b('ld\n')).toString(), 'ld\n')
    assert.equal(s.push(b('abc se')).toString(), 'abc ')
    assert.equal(s.push(b('x')).toString(), 'sex')
  })

  test('holds back only the longest tail that is a proper prefix of a secret', () => {
    const s = new SecretMasker(['abcabd', 'xyz']).stream()
    assert.equal(s.push(b('zzabcab')).toString(), 'zz')
    assert.equal(s.push(b('c')).toString(), 'abc')
    assert.equal(s.push(b('abd!')).toString(), '****!')
  })

  test('end() flushes a partial prefix that never completed', () => {
    const s = new SecretMasker(['hunter2']).stream()
    assert.equal(s.push(b('pw=hunte')).toString(), 'pw=')
    assert.equal(s.end().toString(), 'hunte')
    assert.equal(s.end().toString(), '')
  })

  test('end() still masks a shorter secret inside the held tail', () => {
    const s = new SecretMasker(['abc', 'abcdef']).stream()
    assert.equal(s.push(b('x abcde')).toString(), 'x ')
    assert.equal(s.end().toString(), '****de')
  })

  test('waits for a longer secret before masking a shorter one at the same position', () => {
    const s = new SecretMasker(['abc', 'abcdef']).stream()
    assert.equal(s.push(b('abcd')).toString(), '')
    assert.equal(s.push(b('ef tail')).toString(), '**** tail')
  })

  test('overlapping secrets give the same result streamed and whole', () => {
    const m = new SecretMasker(['abcdef', 'cdefgh'])
    for (const text of ['abcdefgh', 'xcdefgh', 'abcdecdefgh', 'ababcdefcdefgh']) {
      assert.deepEqual(feed(m.stream(), bytewise(b(text))), m.maskAll(b(text)), text)
    }
  })

  test('masks a multi-byte UTF-8 secret split mid-character', () => {
    const secret = 'pässwörd-€-𝄞'
    const data = b(`user: ${secret}\n`)
    const m = new SecretMasker([secret])
    const cut = data.indexOf(0xa4) // the second byte of "ä"
    const emoji = data.indexOf(0xf0) + 2 // inside the 4-byte "𝄞"
    const out = feed(m.stream(), [data.subarray(0, cut), data.subarray(cut, emoji), data.subarray(emoji)])
    assert.equal(out.toString(), 'user: ****\n')
  })

  test('applies a secret added after the stream started to later bytes', () => {
    const m = new SecretMasker(['first-secret'])
    const s = m.stream()
    assert.equal(s.push(b('late-secret first-secret ')).toString(), 'late-secret **** ')
    m.add('late-secret')
    assert.equal(s.push(b('late-secret')).toString(), '****')
    assert.equal(s.end().toString(), '')
  })

  test('passes chunks through when there are no secrets', () => {
    const s = new SecretMasker(['x']).stream()
    assert.equal(s.push(b('abc')).toString(), 'abc')
    assert.equal(s.end().length, 0)
  })

  test('copies what it holds, so a reused chunk buffer does not change the output', () => {
    const s = new SecretMasker(['hunter2']).stream()
    const chunk = b('pw=hunt')
    assert.equal(s.push(chunk).toString(), 'pw=')
    chunk.fill(0x41)
    assert.equal(s.push(b('er2')).toString(), '****')
  })
})

describe('property: streamed output equals maskAll of the whole, and no secret survives', () => {
  // A small alphabet, with multi-byte characters, makes near-misses and overlaps common.
  const alphabet = ['a', 'b', 'c', 'ab', ' ', '\n', 'é', '€', '𝄞']

  function randomText(rand: () => number, length: number): string {
    let s = ''
    for (let i = 0; i < length; i++) s += alphabet[Math.floor(rand() * alphabet.length)]!
    return s
  }

  function randomChunks(rand: () => number, data: Buffer): Buffer[] {
    const chunks: Buffer[] = []
    let i = 0
    while (i < data.length) {
      const mode = rand()
      const size = mode < 0.3 ? 1 : mode < 0.9 ? 1 + Math.floor(rand() * 8) : 1 + Math.floor(rand() * 64)
      chunks.push(data.subarray(i, i + size))
      if (rand() < 0.05) chunks.push(Buffer.alloc(0))
      i += size
    }
    return chunks
  }

  test('holds for 500 seeded random texts, secrets and chunkings', () => {
    for (let seed = 1; seed <= Number(process.env.MASKING_SEEDS ?? 500); seed++) {
      const rand = mulberry32(seed)
      const secrets = Array.from({ length: 1 + Math.floor(rand() * 5) }, () => randomText(rand, 2 + Math.floor(rand() * 6)))
      const masker = new SecretMasker(secrets)
      const counted = secrets.map(b).filter((s) => s.length >= 3)
      let text = ''
      const parts = Math.floor(rand() * 12)
      for (let i = 0; i < parts; i++) {
        text += randomText(rand, Math.floor(rand() * 10))
        if (rand() < 0.7 && secrets.length > 0) text += secrets[Math.floor(rand() * secrets.length)]
      }
      const data = b(text)
      const whole = masker.maskAll(data)
      // Against the masker's own patterns: a secret with a newline or outer whitespace adds variants.
      assert.deepEqual(whole, naiveMask(data, [...masker.patterns]), `seed ${seed}: maskAll vs reference`)
      for (let round = 0; round < 3; round++) {
        const streamed = feed(masker.stream(), randomChunks(rand, data))
        assert.deepEqual(streamed, whole, `seed ${seed}: chunking round ${round}`)
      }
      for (const s of counted) assert.equal(whole.indexOf(s), -1, `seed ${seed}: ${JSON.stringify(s.toString())} survived in ${JSON.stringify(whole.toString())}`)
    }
  })
})

/*
 * RC4, which NTLM sealing needs and Node 20's OpenSSL 3 no longer offers (legacy provider). One
 * instance is one keystream: NTLM keeps a sealing handle per direction for the whole session.
 */

export class Rc4 {
  private readonly s = new Uint8Array(256)
  private i = 0
  private j = 0

  constructor(key: Uint8Array) {
    const s = this.s
    for (let k = 0; k < 256; k++) s[k] = k
    let j = 0
    for (let k = 0; k < 256; k++) {
      j = (j + s[k]! + key[k % key.length]!) & 0xff
      const t = s[k]!
      s[k] = s[j]!
      s[j] = t
    }
  }

  /** XORs `data` with the next bytes of the keystream (a new buffer; `data` is untouched). */
  update(data: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(data.length)
    const s = this.s
    let { i, j } = this
    for (let k = 0; k < data.length; k++) {
      i = (i + 1) & 0xff
      j = (j + s[i]!) & 0xff
      const t = s[i]!
      s[i] = s[j]!
      s[j] = t
      out[k] = data[k]! ^ s[(s[i]! + s[j]!) & 0xff]!
    }
    this.i = i
    this.j = j
    return out
  }
}

/** One-shot RC4 with a fresh key (RC4K in MS-NLMP). */
export function rc4(key: Uint8Array, data: Uint8Array): Buffer {
  return new Rc4(key).update(data)
}

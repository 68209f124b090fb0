import { createRequire } from 'node:module'

/*
 * MD4 for NTOWFv2: Node 20's OpenSSL 3 refuses it (legacy provider), so it comes from js-md4,
 * a small pure-JS implementation without type declarations.
 */

const jsMd4 = createRequire(import.meta.url)('js-md4') as { arrayBuffer(data: Uint8Array): ArrayBuffer }

export function md4(data: Uint8Array): Buffer {
  return Buffer.from(jsMd4.arrayBuffer(data))
}

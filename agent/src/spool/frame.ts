// Record framing shared by the journal and the spool: [u32 LE payload length][u32 LE CRC-32 of payload][payload].
// A reader stops at the first frame that is short, empty or fails its CRC: that is where a crash tore the file.
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs'

export const FRAME_HEADER = 8

// zlib.crc32 exists only from Node 22; this is the same CRC-32 (IEEE), slicing by 4 to keep replay of a full spool fast.
const TABLES = (() => {
  const t = new Uint32Array(256 * 4)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) {
      const prev = t[(k - 1) * 256 + n]!
      t[k * 256 + n] = (t[prev & 0xff]! ^ (prev >>> 8)) >>> 0
    }
  }
  return t
})()

function crc32(buf: Uint8Array, start = 0, end = buf.length): number {
  const t = TABLES
  let c = 0xffffffff
  let i = start
  for (; i + 4 <= end; i += 4) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24)
    c = t[768 + (c & 0xff)]! ^ t[512 + ((c >>> 8) & 0xff)]! ^ t[256 + ((c >>> 16) & 0xff)]! ^ t[c >>> 24]!
  }
  for (; i < end; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

/** One frame whose payload is `prefix` then `body`; the body is copied once, straight into the frame. */
export function encodeFrame(prefix: Uint8Array, body: Uint8Array = new Uint8Array(0)): Buffer {
  const len = prefix.length + body.length
  const frame = Buffer.allocUnsafe(FRAME_HEADER + len)
  frame.set(prefix, FRAME_HEADER)
  frame.set(body, FRAME_HEADER + prefix.length)
  frame.writeUInt32LE(len, 0)
  frame.writeUInt32LE(crc32(frame, FRAME_HEADER), 4)
  return frame
}

/** Calls `visit` with each intact payload's [start, end) in `buf`; returns where the intact frames end. */
export function scanFrames(buf: Buffer, visit: (start: number, end: number) => void): number {
  let at = 0
  while (buf.length - at >= FRAME_HEADER) {
    const len = buf.readUInt32LE(at)
    const start = at + FRAME_HEADER
    // An empty payload is never written, and a zero-filled tail (size grew, data never landed) would pass the CRC.
    if (len === 0 || len > buf.length - start) break
    if (crc32(buf, start, start + len) !== buf.readUInt32LE(at + 4)) break
    visit(start, start + len)
    at = start + len
  }
  return at
}

export function writeAllSync(fd: number, buf: Uint8Array): void {
  let done = 0
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done)
}

/** Makes a file's creation, rename or removal durable. Windows cannot open directories, and NTFS journals metadata. */
export function fsyncDir(dir: string): void {
  if (process.platform === 'win32') return
  const fd = openSync(dir, 'r')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

// One spool segment file, `seg-<n>.log`: appended to while it is the head, read back by offset until deleted.
import { closeSync, ftruncateSync, openSync, readSync, unlinkSync } from 'node:fs'
import path from 'node:path'
import { writeAllSync } from './frame.ts'

const NAME = /^seg-(\d+)\.log$/

export function segmentNumbers(names: string[]): number[] {
  return names.flatMap((name) => {
    const m = NAME.exec(name)
    return m ? [Number(m[1])] : []
  }).sort((a, b) => a - b)
}

export class Segment {
  /** Unacked output chunks and results whose current copy lives in this file. */
  live = 0
  /**
   * Assignments this file says something about that a replay could misread without their ack state: any output,
   * result or ack record, or a checkpoint line for an assignment not yet done. While one survives, the spool keeps
   * writing that assignment's state into checkpoints.
   */
  readonly refs = new Set<string>()
  readonly file: string
  #fd: number

  private constructor(readonly n: number, dir: string, public size: number) {
    this.file = path.join(dir, `seg-${n}.log`)
    // 'a+': appends always land at the end, reads take an explicit position.
    this.#fd = openSync(this.file, 'a+', 0o600)
  }

  static create(dir: string, n: number): Segment {
    return new Segment(n, dir, 0)
  }

  /** Opens an existing file whose intact records end at `size`, cutting off anything after that. */
  static recover(dir: string, n: number, size: number, fileSize: number): Segment {
    const seg = new Segment(n, dir, size)
    if (fileSize > size) ftruncateSync(seg.#fd, size)
    return seg
  }

  /** Writes a whole frame and returns the offset it starts at; a failed write is cut back off. */
  append(frame: Uint8Array): number {
    const at = this.size
    try {
      writeAllSync(this.#fd, frame)
    } catch (err) {
      try {
        ftruncateSync(this.#fd, at)
      } catch {
        // The write error is the one worth reporting.
      }
      throw err
    }
    this.size += frame.length
    return at
  }

  // A plain Uint8Array, not a pooled Buffer: decoded chunks hold views of it.
  read(offset: number, length: number): Uint8Array {
    const buf = new Uint8Array(length)
    let done = 0
    while (done < length) {
      const n = readSync(this.#fd, buf, done, length - done, offset + done)
      if (n === 0) throw new Error(`${this.file} ends before offset ${offset + length}`)
      done += n
    }
    return buf
  }

  close(): void {
    if (this.#fd < 0) return
    closeSync(this.#fd)
    this.#fd = -1
  }

  remove(): void {
    this.close()
    unlinkSync(this.file)
  }
}

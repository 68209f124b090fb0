import { StringDecoder } from 'node:string_decoder'
import { encodedCommandLine, PS_FLAGS, type PsExe } from '../powershell.ts'

/*
 * PowerShell over WinRM: scripts travel as `-EncodedCommand` (base64 of UTF-16LE) while that fits
 * on a command line, else over stdin with `-Command -`. Windows PowerShell writes its error stream
 * as CLIXML when its output is redirected; the decoder turns that back into plain text.
 */

/** cmd.exe's limit is 8191 characters; CreateProcess allows 32767, but stay well under both. */
export const MAX_ENCODED_COMMAND_CHARS = 8000


/** The command line that runs `script`, and what goes to its stdin first (the script itself when too long). */
export function psInvocation(script: string, exe: PsExe): { commandLine: string; stdinScript?: string } {
  const encoded = encodedCommandLine(script, exe)
  if (encoded.length <= MAX_ENCODED_COMMAND_CHARS) return { commandLine: encoded }
  // With `-Command -` PowerShell reads statements line by line; a blank line ends any open block.
  return { commandLine: `${exe} ${PS_FLAGS} -Command -`, stdinScript: `${script}\n\n` }
}

const CLIXML_HEADER = '#< CLIXML'

/** `_x000D__x000A_` escapes (and XML entities) in CLIXML strings back to characters. */
export function unescapeClixml(s: string): string {
  return s
    .replace(/_x([0-9A-Fa-f]{4})_/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
    .replace(/&(lt|gt|amp|quot|apos|#x[0-9A-Fa-f]+|#\d+);/g, (_, e: string) =>
      e === 'lt' ? '<' : e === 'gt' ? '>' : e === 'amp' ? '&' : e === 'quot' ? '"' : e === 'apos' ? "'" : String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)),
    )
}

/**
 * Streaming decoder for a PowerShell stderr stream: plain text passes through; once the stream
 * starts with `#< CLIXML`, each complete `<S S="…">` string element is emitted as text and
 * everything else (progress records, the Objs wrapper) is dropped.
 */
export class ClixmlDecoder {
  private mode: 'unknown' | 'plain' | 'clixml' = 'unknown'
  private buf = ''
  // Chunks may split a UTF-8 sequence.
  private readonly utf8 = new StringDecoder('utf8')

  push(chunk: Buffer | string): string {
    this.buf += typeof chunk === 'string' ? chunk : this.utf8.write(chunk)
    if (this.mode === 'unknown') {
      const head = this.buf.trimStart()
      if (head.length < CLIXML_HEADER.length && CLIXML_HEADER.startsWith(head)) return ''
      this.mode = head.startsWith(CLIXML_HEADER) ? 'clixml' : 'plain'
    }
    if (this.mode === 'plain') {
      const out = this.buf
      this.buf = ''
      return out
    }
    return this.drain(false)
  }

  /** Whatever is left at the end of the stream. */
  end(): string {
    this.buf += this.utf8.end()
    if (this.mode !== 'clixml') {
      const out = this.buf
      this.buf = ''
      return out
    }
    return this.drain(true)
  }

  private drain(final: boolean): string {
    let out = ''
    const re = /<S S="([^"]*)">([\s\S]*?)<\/S>|<S S="[^"]*"\s*\/>/g
    let consumed = 0
    for (let m = re.exec(this.buf); m; m = re.exec(this.buf)) {
      if (m[2] !== undefined) out += unescapeClixml(m[2])
      consumed = re.lastIndex
    }
    // Keep the tail that may hold the start of an element not yet complete.
    const rest = this.buf.slice(consumed)
    const open = rest.lastIndexOf('<S ')
    this.buf = final ? '' : open >= 0 ? rest.slice(open) : rest.slice(Math.max(0, rest.length - 3))
    return out
  }
}

import type { Message } from './types.ts'

/** What the channel types share when they shape a message: severity labels, limits, escaping. */

export const SEVERITY_LABEL: Record<Message['severity'], string> = {
  critical: 'CRITICAL',
  error: 'ERROR',
  warning: 'WARNING',
  info: 'INFO',
  success: 'OK',
}

/** Cuts text to `max` characters (code points), ending with "…" when it was longer. */
export function truncate(text: string, max: number): string {
  const chars = [...text]
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`
}

export const factsOf = (m: Message) => (m.facts ?? []).filter((f) => f.label.trim() !== '')

/** The plain-text body every channel can fall back to: text, facts as "Label: value" lines, the link. */
export function plainText(m: Message): string {
  const facts = factsOf(m).map((f) => `${f.label}: ${f.value}`)
  return [m.text.trimEnd(), facts.length ? facts.join('\n') : '', m.link ? `Open: ${m.link}` : ''].filter(Boolean).join('\n\n')
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!)
}

/** The parts of a URL that may carry a token (path, query), for masking receivers' answers. */
export function urlSecrets(url: string | undefined): string[] {
  if (!url) return []
  const out = [url]
  try {
    const u = new URL(url)
    if (u.pathname.length >= 8) out.push(u.pathname)
    if (u.search.length >= 8) out.push(u.search.slice(1))
    // A receiver may echo one token alone: each long path segment and each query value.
    out.push(...u.pathname.split('/').filter((seg) => seg.length >= 8))
    for (const value of u.searchParams.values()) if (value.length >= 4) out.push(value)
  } catch {
    /* an invalid URL is refused when the channel is saved; nothing more to mask */
  }
  return out
}

/** The secret values of a channel, for masking (every string value). */
export const secretValues = (secret: Record<string, string>) => Object.values(secret).filter((v) => typeof v === 'string' && v.length > 0)

/** The channel's delivery deadline from its stored config (validated when saved; a stray value falls back to the default). */
export function timeoutOf(config: Record<string, unknown>): number | undefined {
  const v = config.timeout_ms
  return typeof v === 'number' && Number.isInteger(v) && v >= 1000 && v <= 60_000 ? v : undefined
}

import type { EndEvent, OutputEvent, RunStatusEvent, StepStatusEvent } from '../../../../controller/src/runs/events.ts'
import { ApiError, getJson } from '../../api.ts'

export type { EndEvent, OutputEvent, RunStatusEvent, StepStatusEvent }

/*
 * A run's live events over Server-Sent Events. Every event has the run's event seq as its id:
 * the browser resumes after a dropped connection with Last-Event-ID by itself, and anything at or
 * below the last id seen is ignored, so a reconnect neither loses nor repeats a line. When the
 * browser gives up (an HTTP error, e.g. an access token that expired), the run is read once through
 * the API (which refreshes the session) and the stream reopened after the last id seen.
 */

export type StreamState = 'connecting' | 'live' | 'reconnecting' | 'ended' | 'failed'

export interface RunStreamHandlers {
  run(e: RunStatusEvent): void
  step(e: StepStatusEvent): void
  output(e: OutputEvent): void
  end(e: EndEvent): void
  state(s: StreamState, error?: unknown): void
}

export interface RunStream {
  close(): void
  /** The id of the last event taken. */
  lastId(): number
}

export function openRunStream(runId: string, h: RunStreamHandlers, opts: { after?: number } = {}): RunStream {
  let lastId = opts.after ?? 0
  let es: EventSource | undefined
  let closed = false
  let failures = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const path = `/api/v1/runs/${encodeURIComponent(runId)}/events`

  const take =
    <T>(fn: (e: T) => void) =>
    (ev: Event) => {
      const msg = ev as MessageEvent<string>
      const id = Number(msg.lastEventId)
      if (!Number.isFinite(id) || id <= lastId) return
      lastId = id
      fn(JSON.parse(msg.data) as T)
    }

  const connect = () => {
    if (closed) return
    const source = new EventSource(lastId > 0 ? `${path}?after=${lastId}` : path)
    es = source
    source.onopen = () => {
      failures = 0
      h.state('live')
    }
    source.addEventListener('run', take(h.run))
    source.addEventListener('step', take(h.step))
    source.addEventListener('output', take(h.output))
    source.addEventListener('end', (ev) => {
      // The end carries the last event's id: it is never a duplicate.
      closed = true
      source.close()
      h.end(JSON.parse((ev as MessageEvent<string>).data) as EndEvent)
      h.state('ended')
    })
    source.onerror = () => {
      if (closed) return
      h.state('reconnecting')
      if (source.readyState !== EventSource.CLOSED) return // the browser retries with Last-Event-ID
      source.close()
      failures++
      timer = setTimeout(recover, Math.min(15_000, 250 * 2 ** Math.min(failures, 6)))
    }
  }

  const recover = async () => {
    if (closed) return
    try {
      // Any API read refreshes an expired session; it also tells a deleted run from a network blip.
      await getJson(`/api/v1/runs/${encodeURIComponent(runId)}`)
      connect()
    } catch (err) {
      if (err instanceof ApiError && (err.status === 401 || err.status === 403 || err.status === 404)) {
        closed = true
        h.state('failed', err)
        return
      }
      failures++
      timer = setTimeout(recover, Math.min(15_000, 250 * 2 ** Math.min(failures, 6)))
    }
  }

  h.state('connecting')
  connect()
  return {
    close() {
      closed = true
      clearTimeout(timer)
      es?.close()
    },
    lastId: () => lastId,
  }
}

/** base64 → bytes (Uint8Array.fromBase64 where the browser has it). */
export function fromBase64(b64: string): Uint8Array {
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array }).fromBase64
  if (native) return native(b64)
  const bin = atob(b64)
  const out = new Uint8Array(bin.length)
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i)
  return out
}

import { getJson, type api, type Ok } from '../../api.ts'
import { fromBase64 } from './run-stream.ts'

/*
 * "Download output": the stored output of the chosen step runs, read from the API in pages of
 * chunks (so it has everything, even lines the viewer dropped to save memory), assembled into a
 * Blob without ever building one big string, and saved as a text file.
 */

/** The JSON form of GET /runs/:id/steps/:stepRunId/output, typed from the route. */
type OutputPage = Extract<Ok<Awaited<ReturnType<(typeof api.runs)[':id']['steps'][':stepRunId']['output']['$get']>>>, { chunks: unknown }>

export interface DownloadPart {
  stepRunId: string
  /** Written as a header before this step run's output when there are several. */
  label: string
}

const PAGE = 2000

export async function outputBlob(runId: string, parts: DownloadPart[], stream?: 'stdout' | 'stderr'): Promise<Blob> {
  const blobParts: BlobPart[] = []
  const enc = new TextEncoder()
  for (const part of parts) {
    if (parts.length > 1) blobParts.push(enc.encode(`${blobParts.length ? '\n' : ''}==> ${part.label} <==\n`))
    let from = 0
    for (;;) {
      const q = new URLSearchParams({ format: 'json', from_seq: String(from), limit: String(PAGE) })
      if (stream) q.set('stream', stream)
      const page = await getJson<OutputPage>(`/api/v1/runs/${encodeURIComponent(runId)}/steps/${encodeURIComponent(part.stepRunId)}/output?${q}`)
      for (const ch of page.chunks) {
        if (ch.dropped_bytes > 0) blobParts.push(enc.encode(`\n[opsconductor: ${ch.dropped_bytes} bytes of output were lost on the agent (spool full)]\n`))
        blobParts.push(fromBase64(ch.data) as Uint8Array<ArrayBuffer>)
      }
      if (page.output_pruned_at && from === 0 && page.chunks.length === 0) blobParts.push(enc.encode(`[opsconductor: this output was deleted by the retention policy on ${page.output_pruned_at}]\n`))
      if (page.complete && page.truncated) blobParts.push(enc.encode('\n[opsconductor: output truncated (the per-step cap)]\n'))
      if (page.complete || page.chunks.length < PAGE) break
      from = page.next_from_seq
    }
  }
  return new Blob(blobParts, { type: 'text/plain;charset=utf-8' })
}

export function saveBlob(blob: Blob, fileName: string): void {
  const url = URL.createObjectURL(blob)
  const a = document.createElement('a')
  a.href = url
  a.download = fileName
  a.hidden = true
  document.body.append(a)
  a.click()
  a.remove()
  setTimeout(() => URL.revokeObjectURL(url), 60_000)
}

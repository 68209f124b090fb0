import { request } from 'node:https'

export interface HttpsResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  body: string
  json<T = unknown>(): T
}

/** HTTPS request that trusts exactly the given CA (the controller's generated one). */
export function httpsRequest(
  url: string,
  opts: { ca: string; method?: string; body?: string; headers?: Record<string, string>; timeoutMs?: number },
): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', ca: opts.ca, headers: opts.headers, timeout: opts.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8')
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body) as T })
      })
    })
    req.on('timeout', () => req.destroy(new Error(`timeout requesting ${url}`)))
    req.on('error', reject)
    req.end(opts.body)
  })
}

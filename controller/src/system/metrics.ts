import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

/** One registry per controller instance (not prom-client's global), so tests can run several apps. */
export interface Metrics {
  registry: Registry
  httpRequests: Counter<'method' | 'route' | 'status'>
  httpDuration: Histogram<'method' | 'route'>
}

export function createMetrics(version: string): Metrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  new Gauge({ name: 'opsc_build_info', help: 'OpsConductor build; value is always 1', labelNames: ['version'], registers: [registry] })
    .set({ version }, 1)
  return {
    registry,
    httpRequests: new Counter({
      name: 'opsc_http_requests_total',
      help: 'HTTP requests served, by route pattern and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'opsc_http_request_duration_seconds',
      help: 'HTTP request duration, by route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  }
}

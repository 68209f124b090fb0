import type { MaintenanceWindowRow } from './maintenance.sql.ts'

/** A maintenance window row for tests: a one-off UTC window with nothing set, overridden by `v`. */
export function windowRow(v: Partial<MaintenanceWindowRow>): MaintenanceWindowRow {
  return {
    id: '00000000-0000-4000-8000-000000000001',
    name: 'w',
    description: null,
    enabled: true,
    timezone: 'UTC',
    kind: 'one_off',
    startsAt: null,
    endsAt: null,
    cron: null,
    durationSec: null,
    ranges: null,
    appliesTo: 'all',
    action: 'skip',
    createdAt: new Date(0),
    updatedAt: new Date(0),
    createdBy: null,
    updatedBy: null,
    deletedAt: null,
    ...v,
  }
}

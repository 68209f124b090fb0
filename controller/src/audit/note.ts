/**
 * What a handler tells the audit middleware about the change it made. `action` defaults to one
 * derived from the route (`POST /api/v1/users` → `users.create`); `skip` is for handlers that
 * write their own, richer security events (login, refresh).
 */
export interface AuditNote {
  action?: string
  resourceType?: string
  resourceId?: string | null
  /** Redacted before it is stored: never put secrets here, but the redactor drops them anyway. */
  summary?: Record<string, unknown>
  skip?: boolean
}

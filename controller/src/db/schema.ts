// Every feature keeps its tables in its own *.sql.ts; this file gathers them for drizzle.
export * from '../system/system.sql.ts'
export * from '../audit/audit.sql.ts'
export * from '../users/users.sql.ts'
export * from '../auth/auth.sql.ts'
export * from '../api-tokens/api-tokens.sql.ts'
export * from '../settings/settings.sql.ts'
export * from '../credentials/credentials.sql.ts'
export * from '../targets/targets.sql.ts'

// Every feature keeps its tables in its own *.sql.ts; this file gathers them for drizzle.
export * from '../system/system.sql.ts'

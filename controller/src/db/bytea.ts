import { customType } from 'drizzle-orm/pg-core'

/** bytea as the drivers return it: a Buffer (postgres.js), a Uint8Array (PGlite), or `\x…` hex text from a raw query. */
export function byteaValue(v: unknown): Buffer {
  if (Buffer.isBuffer(v)) return v
  if (v instanceof Uint8Array) return Buffer.from(v)
  if (typeof v === 'string') return Buffer.from(v.startsWith('\\x') ? v.slice(2) : v, 'hex')
  return Buffer.alloc(0)
}

/** A bytea column read as a Buffer whichever driver is underneath. */
export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: byteaValue,
})

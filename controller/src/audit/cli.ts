import type { Db } from '../db/client.ts'
import { verifyAuditChain } from './service.ts'

/** `opsconductor audit verify`: one line, exit 0 when the chain is intact, 1 at the first broken link. */
export async function auditVerifyCommand(db: Db): Promise<{ exitCode: number; output: string }> {
  const result = await verifyAuditChain(db)
  if (result.ok) {
    // The head hash lets an operator record it elsewhere: a later run can then detect a truncated tail.
    const head = result.head ? `; head ${result.head}` : ''
    return { exitCode: 0, output: `audit chain intact: ${rows(result.rows)}${head}` }
  }
  const { id, message } = result.brokenAt
  return { exitCode: 1, output: `audit chain broken at row ${id}: ${message} (${rows(result.rows)} before it verified)` }
}

const rows = (n: number) => `${n} ${n === 1 ? 'row' : 'rows'}`

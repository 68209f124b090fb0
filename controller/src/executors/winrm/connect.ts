import type { AppContext } from '../../context.ts'
import type { OpenedCredential } from '../../credentials/service.ts'
import type { Logger } from '../../log.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { WinrmError } from './errors.ts'
import type { TransportOptions } from './transport.ts'

/*
 * From a target and its credential to the settings of a WinRM connection: the URL comes from the
 * target's connection (https, port), the authentication from the credential.
 */

export interface WinrmDeps {
  ctx: AppContext
  log: Logger
  /** Opens a credential by id (the engine's `x.credential`, which also masks its secrets). */
  credential(ref: string): Promise<OpenedCredential>
  signal?: AbortSignal
}

export function targetLabel(target: TargetRow): string {
  const c = target.connection
  return c.type === 'winrm' ? `${target.name} (${target.address}:${c.port})` : target.name
}

export async function transportOptionsFor(target: TargetRow, deps: WinrmDeps): Promise<TransportOptions> {
  const c = target.connection
  if (c.type !== 'winrm') throw new WinrmError('config', `target ${target.name} is reached over ${c.type}, not WinRM`)
  const label = targetLabel(target)
  if (!c.credential_id) throw new WinrmError('credential', `${label} has no WinRM credential; set connection.credential_id`)
  let cred: OpenedCredential
  try {
    cred = await deps.credential(c.credential_id)
  } catch (err) {
    throw new WinrmError('credential', `credential for ${label}: ${(err as Error).message}`, { cause: err })
  }
  if (cred.type !== 'winrm') throw new WinrmError('credential', `credential ${cred.name} is a ${cred.type} credential; WinRM needs a winrm credential`)
  if (cred.auth === 'basic' && !c.https) throw new WinrmError('config', `${label}: basic authentication over http would send the password in the clear; use https or an ntlm credential`)
  // tls_ca is stored with the connection (schemas.ts) even where the row type does not list it yet.
  const ca = (c as { tls_ca?: unknown }).tls_ca
  return {
    https: c.https,
    host: target.address,
    port: c.port,
    auth: cred.auth,
    username: cred.username,
    password: cred.password,
    domain: cred.domain || undefined,
    ca: typeof ca === 'string' ? ca : undefined,
    verifyTls: c.verify_tls,
  }
}

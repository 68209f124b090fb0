import type { ControllerConfig } from '../config.ts'
import { loadMasterKeyring } from '../crypto/master-key.ts'
import type { Db } from '../db/client.ts'
import { activeSigningPublicKeys, retireSigningKey, rotateSigningKey } from './signing-keys.ts'

/**
 * `opsconductor keys rotate-signing`: a new assignment-signing key becomes current. Controllers
 * announce it to their connected agents (within a minute) before they sign anything with it;
 * older keys stay accepted until retired.
 */
export async function rotateSigningCommand(db: Db, config: ControllerConfig): Promise<{ exitCode: number; output: string }> {
  const keyring = loadMasterKeyring({ dataDir: config.OPSC_DATA_DIR, envKey: config.OPSC_MASTER_KEY })
  const keyId = await rotateSigningKey(db, keyring)
  const others = (await activeSigningPublicKeys(db)).map((k) => k.keyId).filter((id) => id !== keyId)
  return {
    exitCode: 0,
    output: [`new assignment-signing key ${keyId} is current`, others.length ? `still accepted until retired: ${others.join(', ')} (\`opsconductor keys retire-signing KEY_ID\`)` : ''].filter(Boolean).join('\n'),
  }
}

/** `opsconductor keys retire-signing KEY_ID`: agents stop accepting an older signing key. */
export async function retireSigningCommand(db: Db, keyId: string): Promise<{ exitCode: number; output: string }> {
  await retireSigningKey(db, keyId)
  return { exitCode: 0, output: `retired assignment-signing key ${keyId}; connected agents are told within a minute` }
}

import type { z } from 'zod'
import { CopyInput, ExecInput } from './exec-input.ts'
import { httpExecutor } from './http.ts'
import { snmpExecutor } from './snmp.ts'
import { sqlExecutor } from './sql.ts'
import { sshExecutors } from './ssh/index.ts'
import type { StepExecutor } from './types.ts'
import { waitExecutor } from './wait.ts'
import { webhookExecutor } from './webhook.ts'

/*
 * Every step type the engine knows: its input schema, whether it needs a target, and how it is
 * run. `exec`/`copy` pick the transport from the target (agent, else SSH or WinRM); the forced
 * forms pin it; the rest run inside the controller through a StepExecutor.
 */

export type StepRoute =
  | { kind: 'neutral'; action: 'exec' | 'copy' }
  | { kind: 'transport'; transport: 'ssh' | 'winrm'; action: 'exec' | 'copy' }
  | { kind: 'controller'; executor: StepExecutor<any>; transport?: 'ssh' }

export interface StepTypeInfo {
  input: z.ZodType
  needsTarget: boolean
  route: StepRoute
}

const types = new Map<string, StepTypeInfo>([
  ['exec', { input: ExecInput, needsTarget: true, route: { kind: 'neutral', action: 'exec' } }],
  ['copy', { input: CopyInput, needsTarget: true, route: { kind: 'neutral', action: 'copy' } }],
  ['winrm.exec', { input: ExecInput, needsTarget: true, route: { kind: 'transport', transport: 'winrm', action: 'exec' } }],
  ['winrm.copy', { input: CopyInput, needsTarget: true, route: { kind: 'transport', transport: 'winrm', action: 'copy' } }],
])

function register(executor: StepExecutor<any>, transport?: 'ssh'): void {
  for (const type of executor.types) {
    types.set(type, { input: executor.input, needsTarget: executor.needsTarget, route: { kind: 'controller', executor, ...(transport ? { transport } : {}) } })
  }
}

for (const executor of [httpExecutor, webhookExecutor, sqlExecutor, snmpExecutor, waitExecutor]) register(executor)
for (const executor of sshExecutors) register(executor, 'ssh')

export function stepType(type: string): StepTypeInfo | undefined {
  return types.get(type)
}

export function stepTypeNames(): string[] {
  return [...types.keys()].sort()
}

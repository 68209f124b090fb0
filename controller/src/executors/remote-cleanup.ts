import { z } from 'zod'
import type { AppContext } from '../context.ts'
import { openCredential } from '../credentials/service.ts'
import { getTargetRow } from '../targets/service.ts'
import { capture } from './ssh/channel.ts'
import { killCommand } from './ssh/command.ts'
import { connectSsh } from './ssh/pool.ts'
import { transportOptionsFor } from './winrm/connect.ts'
import { call, endpointUrl } from './winrm/shell.ts'
import { WinrmTransport } from './winrm/transport.ts'
import { deleteShellRequest, signalRequest } from './winrm/wsman.ts'

/*
 * A controller that dies mid-step leaves its agentless command running on the host. The executors
 * record a handle when the command starts (step_run.remote); the controller that finds the step's
 * lease expired ends the remote work with it: the SSH process group is killed, the WinRM command
 * terminated and its shell deleted.
 */

export const RemoteHandle = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ssh.pgid'), target_id: z.uuid(), pgid: z.number().int().positive(), run_as: z.string().nullable().optional() }),
  z.object({ kind: z.literal('winrm.command'), target_id: z.uuid(), shell_id: z.string().min(1), command_id: z.string().min(1) }),
])
export type RemoteHandle = z.output<typeof RemoteHandle>

const CLEANUP_TIMEOUT_MS = 30_000

/** Ends the remote work behind `handle`; resolves with what was done, rejects when the host could not be reached. */
export async function cleanUpRemote(ctx: AppContext, raw: unknown): Promise<string> {
  const parsed = RemoteHandle.safeParse(raw)
  if (!parsed.success) return 'nothing to clean up'
  const handle = parsed.data
  const target = await getTargetRow(ctx.db, handle.target_id)
  const deps = { ctx, log: ctx.log, credential: (ref: string) => openCredential(ctx, ref), signal: AbortSignal.timeout(CLEANUP_TIMEOUT_MS) }
  if (handle.kind === 'ssh.pgid') {
    const conn = await connectSsh(target, deps)
    try {
      const r = await capture(conn.client, killCommand(handle.pgid, handle.run_as ?? undefined), CLEANUP_TIMEOUT_MS)
      return r.code === 0 ? `process group ${handle.pgid} killed` : `kill of process group ${handle.pgid} ended with ${r.code ?? 'no exit code'}`
    } finally {
      conn.close()
    }
  }
  const transport = new WinrmTransport(await transportOptionsFor(target, deps))
  try {
    const to = endpointUrl(transport)
    // The command may be gone already (the shell idled out): deleting the shell is what matters.
    await call(transport, signalRequest(to, handle.shell_id, handle.command_id, 'terminate'), 'Signal', deps.signal).catch(() => {})
    await call(transport, deleteShellRequest(to, handle.shell_id), 'Delete', deps.signal)
    return `shell ${handle.shell_id} deleted`
  } finally {
    transport.close()
  }
}

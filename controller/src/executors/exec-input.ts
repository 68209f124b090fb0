import { z } from 'zod'

/*
 * The inputs shared by every transport that runs a command or writes a file: the neutral
 * `exec`/`copy` steps and their forced forms (`ssh.exec`, `winrm.exec`, `ssh.copy`, `sftp.upload`,
 * `winrm.copy`) take the same fields, so a job can move between transports unchanged.
 */

export const SHELLS = ['sh', 'bash', 'zsh', 'powershell', 'pwsh', 'cmd'] as const
export type Shell = (typeof SHELLS)[number]

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/

export const ExecInput = z
  .object({
    command: z.string().min(1, 'required').max(1024 * 1024),
    /** Default: `sh` on Linux/Unix targets, `powershell` on Windows. */
    shell: z.enum(SHELLS).optional(),
    env: z.record(z.string().regex(ENV_NAME, 'environment variable names: letters, digits and _'), z.string().max(32 * 1024)).default({}),
    cwd: z.string().min(1).max(4096).optional(),
    pty: z.boolean().default(false),
    /** Run as another user (agent: the agent's privilege; SSH: `sudo -n -u`). */
    run_as: z.string().regex(/^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,63}$/, 'a user name').optional(),
    stdin: z.string().max(1024 * 1024).optional(),
    /** Exit codes that count as success. */
    success_exit_codes: z.array(z.number().int()).min(1).max(64).default([0]),
  })
  .strict()
export type ExecInput = z.output<typeof ExecInput>

export const CopyInput = z
  .object({
    destination: z.string().min(1, 'required').max(4096),
    /** The file's content as text (UTF-8) … */
    content: z.string().max(64 * 1024 * 1024).optional(),
    /** … or as base64 for binary files. */
    content_base64: z.string().max(90 * 1024 * 1024).regex(/^[A-Za-z0-9+/]*={0,2}$/, 'not base64').optional(),
    /** POSIX permission bits as an octal string, e.g. "0640". */
    mode: z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode such as 0644').optional(),
    overwrite: z.boolean().default(true),
    create_parents: z.boolean().default(true),
  })
  .strict()
  .superRefine((v, ctx) => {
    if ((v.content === undefined) === (v.content_base64 === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['content'], message: 'give exactly one of content or content_base64' })
    }
  })
export type CopyInput = z.output<typeof CopyInput>

/** The bytes a copy step writes. */
export function copyContent(input: CopyInput): Buffer {
  return input.content_base64 !== undefined ? Buffer.from(input.content_base64, 'base64') : Buffer.from(input.content ?? '', 'utf8')
}

/** A copy step's mode as a number (0 = leave the platform default). */
export function copyMode(input: CopyInput): number {
  return input.mode ? parseInt(input.mode, 8) : 0
}

import type { z } from 'zod'
import type { ParameterDef, StepDef } from '../../../../controller/src/jobs/definition.ts'
import type { CopyInput, ExecInput, Shell } from '../../../../controller/src/executors/exec-input.ts'
import type { HttpInput } from '../../../../controller/src/executors/http.ts'
import type { WebhookInput } from '../../../../controller/src/executors/webhook.ts'
import type { WaitInput } from '../../../../controller/src/executors/wait.ts'
import type { SqlInput } from '../../../../controller/src/executors/sql.ts'
import type { SnmpInput } from '../../../../controller/src/executors/snmp.ts'
import type { SyncInput } from '../../../../controller/src/executors/ssh/sync.ts'
import type { DownloadInput } from '../../../../controller/src/executors/ssh/copy.ts'
import type { JsonObject } from './model.ts'

/*
 * The palette: every step type the controller runs, with the form fields of each, and the seed's
 * templates (a step type with preset fields). Field keys are checked against the server's own
 * input schemas, so a renamed field is a type error here. Validation stays on the server.
 */

export type FieldKind = 'text' | 'textarea' | 'number' | 'boolean' | 'select' | 'map' | 'lines' | 'status' | 'codes' | 'json'

export interface FieldSpec<K extends string = string> {
  key: K
  label: string
  kind: FieldKind
  hint?: string
  required?: boolean
  options?: readonly string[]
  /** What an unset checkbox means (the server's default). */
  default?: boolean
  /** `map`: the separator between a key and its value on each line. */
  separator?: string
  placeholder?: string
}

type Keys<S extends z.ZodType> = keyof z.input<S> & string
const fields = <S extends z.ZodType>(list: FieldSpec<Keys<S>>[]): FieldSpec[] => list

const SHELLS = ['sh', 'bash', 'zsh', 'powershell', 'pwsh', 'cmd'] as const satisfies readonly Shell[]

const EXEC = fields<typeof ExecInput>([
  { key: 'command', label: 'Command', kind: 'textarea', required: true, hint: 'Templates: {{ params.name | shell }}, {{ target.address }}' },
  { key: 'shell', label: 'Shell', kind: 'select', options: SHELLS, hint: 'Default: sh on Linux/Unix, powershell on Windows' },
  { key: 'cwd', label: 'Working directory', kind: 'text' },
  { key: 'run_as', label: 'Run as user', kind: 'text' },
  { key: 'env', label: 'Environment', kind: 'map', separator: '=', hint: 'One NAME=value per line' },
  { key: 'success_exit_codes', label: 'Success exit codes', kind: 'codes', hint: 'Comma-separated; default 0' },
  { key: 'stdin', label: 'Standard input', kind: 'textarea' },
  { key: 'pty', label: 'Allocate a terminal (pty)', kind: 'boolean', default: false },
])

const COPY = fields<typeof CopyInput>([
  { key: 'destination', label: 'Destination path', kind: 'text', required: true },
  { key: 'content', label: 'Content', kind: 'textarea', hint: 'The file as text (or give content_base64 in the JSON view)' },
  { key: 'mode', label: 'Mode', kind: 'text', placeholder: '0644' },
  { key: 'overwrite', label: 'Overwrite an existing file', kind: 'boolean', default: true },
  { key: 'create_parents', label: 'Create parent directories', kind: 'boolean', default: true },
])

const DOWNLOAD = fields<typeof DownloadInput>([
  { key: 'source', label: 'Source path', kind: 'text', required: true },
  { key: 'max_bytes', label: 'Maximum size (bytes)', kind: 'number' },
])

const SYNC = fields<typeof SyncInput>([
  { key: 'direction', label: 'Direction', kind: 'select', options: ['push', 'pull'] },
  { key: 'local', label: 'Local directory (under the files root)', kind: 'text', required: true },
  { key: 'remote', label: 'Remote directory', kind: 'text', required: true },
  { key: 'compare', label: 'Compare by', kind: 'select', options: ['size_mtime', 'checksum'] },
  { key: 'exclude', label: 'Exclude', kind: 'lines', hint: 'One glob per line' },
  { key: 'delete', label: 'Delete files the source does not have', kind: 'boolean', default: false },
  { key: 'dry_run', label: 'Dry run', kind: 'boolean', default: false },
])

const HTTP_COMMON = [
  { key: 'url', label: 'URL', kind: 'text', required: true, placeholder: 'https://service.example/health' },
  { key: 'headers', label: 'Headers', kind: 'map', separator: ':', hint: 'One Name: value per line' },
  { key: 'expected_status', label: 'Expected status', kind: 'status', hint: 'Comma-separated, e.g. 200, 2xx; default 2xx' },
  { key: 'credential', label: 'Credential (name or id)', kind: 'text' },
] as const

const HTTP = fields<typeof HttpInput>([
  ...HTTP_COMMON,
  { key: 'body', label: 'Body', kind: 'json', hint: 'Not for GET: {"json": …}, {"text": "…"} or {"form": {…}}' },
  { key: 'follow_redirects', label: 'Follow redirects', kind: 'boolean', default: true },
  { key: 'tls_verify', label: 'Verify the TLS certificate', kind: 'boolean', default: true },
  { key: 'capture_body_bytes', label: 'Response bytes kept', kind: 'number' },
])
const HTTP_GET = HTTP.filter((f) => f.key !== 'body')

const WEBHOOK = fields<typeof WebhookInput>([
  ...HTTP_COMMON,
  { key: 'payload', label: 'Payload (JSON)', kind: 'json', required: true },
  { key: 'signing_secret', label: 'Signing secret', kind: 'text', hint: 'Signs each attempt (X-OpsConductor-Signature)' },
  { key: 'attempts', label: 'Attempts', kind: 'number' },
  { key: 'backoff_ms', label: 'First retry delay (ms)', kind: 'number' },
  { key: 'tls_verify', label: 'Verify the TLS certificate', kind: 'boolean', default: true },
])

const WAIT = fields<typeof WaitInput>([{ key: 'seconds', label: 'Seconds', kind: 'number', required: true }])

const SQL = fields<typeof SqlInput>([
  { key: 'credential', label: 'Database credential (name or id)', kind: 'text', required: true },
  { key: 'query', label: 'Query', kind: 'textarea', hint: 'sql.query and sql.execute: one statement' },
  { key: 'script', label: 'Script', kind: 'textarea', hint: 'sql.script: statements separated by ;' },
  { key: 'params', label: 'Parameters (JSON list)', kind: 'json' },
  { key: 'database', label: 'Database', kind: 'text' },
  { key: 'max_rows', label: 'Maximum rows', kind: 'number' },
])

const SNMP = fields<typeof SnmpInput>([
  { key: 'credential', label: 'SNMP credential (name or id)', kind: 'text', required: true },
  { key: 'oids', label: 'OIDs (snmp.get)', kind: 'lines', hint: 'One OID per line' },
  { key: 'oid', label: 'Subtree OID (snmp.walk)', kind: 'text' },
  { key: 'port', label: 'Port', kind: 'number' },
  { key: 'timeout_ms', label: 'Timeout (ms)', kind: 'number' },
  { key: 'max_rows', label: 'Maximum rows', kind: 'number' },
])

/** Fields every step has. */
export const COMMON_FIELDS = [
  { key: 'name', label: 'Step name', kind: 'text' },
  { key: 'id', label: 'Step id', kind: 'text', hint: 'Later steps read its output as {{ steps.<id>.stdout }}' },
  { key: 'target', label: 'Target', kind: 'text', hint: "A name, id or selector; default: the job's targets" },
  { key: 'timeout_sec', label: 'Timeout (seconds)', kind: 'number' },
  { key: 'retries', label: 'Retries', kind: 'number' },
  { key: 'retry_backoff_sec', label: 'Retry backoff (seconds)', kind: 'number' },
  { key: 'run_if', label: 'Run if', kind: 'select', options: ['success', 'failure', 'always'] },
  { key: 'continue_on_error', label: 'Continue when this step fails', kind: 'boolean', default: false },
  { key: 'description', label: 'Description', kind: 'textarea' },
] as const satisfies readonly FieldSpec<keyof StepDef>[]

export type Group = 'Commands' | 'Files' | 'HTTP' | 'Data' | 'Flow'

export interface StepTypeInfo {
  type: string
  label: string
  group: Group
  description: string
  fields: FieldSpec[]
}

export const STEP_TYPES: StepTypeInfo[] = [
  { type: 'exec', label: 'Command', group: 'Commands', description: "Through the target's agent, else SSH or WinRM", fields: EXEC },
  { type: 'ssh.exec', label: 'SSH command', group: 'Commands', description: 'Over SSH from the controller', fields: EXEC },
  { type: 'winrm.exec', label: 'WinRM command', group: 'Commands', description: 'Over WinRM from the controller', fields: EXEC },
  { type: 'copy', label: 'Copy file', group: 'Files', description: "Write a file through the agent, else SFTP or WinRM", fields: COPY },
  { type: 'ssh.copy', label: 'SSH copy', group: 'Files', description: 'Write a file over SSH', fields: COPY },
  { type: 'sftp.upload', label: 'SFTP upload', group: 'Files', description: 'Write a file over SFTP', fields: COPY },
  { type: 'sftp.download', label: 'SFTP download', group: 'Files', description: 'Read a file from the target', fields: DOWNLOAD },
  { type: 'sftp.sync', label: 'SFTP sync', group: 'Files', description: 'Synchronise a directory', fields: SYNC },
  { type: 'winrm.copy', label: 'WinRM copy', group: 'Files', description: 'Write a file over WinRM', fields: COPY },
  { type: 'http.get', label: 'HTTP GET', group: 'HTTP', description: 'A request from the controller', fields: HTTP_GET },
  { type: 'http.post', label: 'HTTP POST', group: 'HTTP', description: 'A request from the controller', fields: HTTP },
  { type: 'http.put', label: 'HTTP PUT', group: 'HTTP', description: 'A request from the controller', fields: HTTP },
  { type: 'http.patch', label: 'HTTP PATCH', group: 'HTTP', description: 'A request from the controller', fields: HTTP },
  { type: 'http.delete', label: 'HTTP DELETE', group: 'HTTP', description: 'A request from the controller', fields: HTTP },
  { type: 'webhook.call', label: 'Webhook', group: 'HTTP', description: 'A signed JSON POST, retried', fields: WEBHOOK },
  { type: 'sql.query', label: 'SQL query', group: 'Data', description: 'Rows from a database', fields: SQL },
  { type: 'sql.execute', label: 'SQL statement', group: 'Data', description: 'One statement', fields: SQL },
  { type: 'sql.script', label: 'SQL script', group: 'Data', description: 'Statements in one transaction', fields: SQL },
  { type: 'snmp.get', label: 'SNMP get', group: 'Data', description: 'Read OIDs', fields: SNMP },
  { type: 'snmp.walk', label: 'SNMP walk', group: 'Data', description: 'Read a subtree', fields: SNMP },
  { type: 'wait', label: 'Wait', group: 'Flow', description: 'Pause between steps', fields: WAIT },
]

export const stepTypeInfo = (type: unknown): StepTypeInfo | undefined => STEP_TYPES.find((t) => t.type === type)

export interface Template {
  id: string
  label: string
  description: string
  step: JsonObject & { type: string }
  /** Parameters the step reads, added to the job when it does not have them yet. */
  parameters?: z.input<typeof ParameterDef>[]
}

const SERVICE_PARAM = { name: 'service', type: 'string', required: true, label: 'Service name' } satisfies z.input<typeof ParameterDef>

/** The seed's job builder templates. */
export const TEMPLATES: Template[] = [
  {
    id: 'powershell_command',
    label: 'PowerShell command',
    description: 'Run PowerShell on Windows targets',
    step: { type: 'exec', shell: 'powershell', command: 'Get-Service | Where-Object Status -eq Running | Select-Object -First 10' },
  },
  {
    id: 'restart_windows_service',
    label: 'Restart Windows service',
    description: 'Restart-Service, then report its status',
    step: { type: 'exec', shell: 'powershell', command: 'Restart-Service -Name {{ params.service | powershell }} -Force\n(Get-Service -Name {{ params.service | powershell }}).Status' },
    parameters: [SERVICE_PARAM],
  },
  {
    id: 'copy_file',
    label: 'Copy file',
    description: 'Write a file on each target',
    step: { type: 'copy', destination: '/tmp/opsconductor.txt', content: 'written by OpsConductor\n', mode: '0644' },
  },
  {
    id: 'bash_command',
    label: 'Bash command',
    description: 'Run a shell command on Linux/Unix targets',
    step: { type: 'exec', shell: 'bash', command: 'uname -a && uptime' },
  },
  {
    id: 'restart_linux_service',
    label: 'Restart Linux service',
    description: 'systemctl restart, then check it is active',
    step: { type: 'exec', shell: 'sh', command: 'systemctl restart {{ params.service | shell }} && systemctl is-active {{ params.service | shell }}' },
    parameters: [SERVICE_PARAM],
  },
  {
    id: 'upload_file',
    label: 'Upload file',
    description: 'Write a file over SFTP',
    step: { type: 'sftp.upload', destination: '/tmp/upload.txt', content: '' },
  },
  {
    id: 'http_get',
    label: 'HTTP GET request',
    description: 'A health check or REST call',
    step: { type: 'http.get', url: 'https://service.example/health', expected_status: ['2xx'] },
  },
  {
    id: 'send_webhook',
    label: 'Send webhook',
    description: 'POST a JSON message, retried',
    step: { type: 'webhook.call', url: 'https://hooks.example/opsconductor', payload: { text: 'OpsConductor: step reached' } },
  },
  {
    id: 'wait',
    label: 'Wait',
    description: 'Pause for a number of seconds',
    step: { type: 'wait', seconds: 30 },
  },
]

export const PARAMETER_TYPES = ['string', 'number', 'boolean', 'choice', 'secret', 'target_selector'] as const satisfies readonly z.input<typeof ParameterDef>['type'][]

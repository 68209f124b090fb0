import { A, useLocation, useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import type { FailureClass } from '../../../../controller/src/targets/connection-test.ts'
import { api, unwrap } from '../../api.ts'
import { createAction } from '../../components/action.ts'
import { Badge, type Tone } from '../../components/badge.tsx'
import { DataTable } from '../../components/data-table.tsx'
import { ConfirmButton, ConfirmDialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { formatBytes, formatDateTime, formatDuration } from '../../components/format.ts'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { getCredential, TYPE_LABELS } from '../credentials/data.ts'
import {
  connectionSummary,
  decideHostKey,
  deleteTarget,
  getTarget,
  hostKeys,
  OS_LABELS,
  tagPairs,
  testConnection,
  type ConnectionTestResult,
  type HostKey,
  type OsType,
  type Target,
} from './data.ts'
import { Chips, createNotice, TargetStatus } from './parts.tsx'
import './targets.css'

/*
 * One target: what it is, how it is reached, what it reported (facts), its SSH host keys, and a
 * "Test connection" that reaches it the way a step would and shows the facts or exactly what failed.
 */

export const FAILURE_LABELS: Record<FailureClass, string> = {
  dns: 'Host name not resolved',
  refused: 'Connection refused',
  timeout: 'Timed out',
  auth_failed: 'Authentication failed',
  host_key_mismatch: 'Host key changed',
  host_key_unknown: 'Host key not trusted yet',
  tls: 'TLS problem',
  protocol: 'Protocol error',
  unreachable: 'Host unreachable',
  config: 'Configuration problem',
}

export function TargetPage() {
  const params = useParams<{ id: string }>()
  const [target, { refetch }] = createResource(() => params.id, getTarget)
  return (
    <div class="targets-area">
      {/* Unkeyed: a refetch (after a test) must keep the test result on screen. */}
      <Loaded resource={target} what="the target" onRetry={() => void refetch()} keyed={false}>
        {(t) => <TargetView target={t()} refetch={() => void refetch()} />}
      </Loaded>
    </div>
  )
}

function TargetView(props: { target: Target; refetch: () => void }) {
  const navigate = useNavigate()
  const location = useLocation<{ saved?: string }>()
  const notice = createNotice()
  if (location.state?.saved) notice.show(location.state.saved)
  const t = () => props.target
  const canWrite = () => can('operator')
  const transport = () => (t().connection.type === 'agent' ? null : (t().connection.type as 'ssh' | 'winrm'))

  // Groups: the list endpoint answers for one target with a selector on its id.
  const [groups] = createResource(
    () => t().id,
    async (id) => (await unwrap(api.targets.$get({ query: { selector: `id:${id}`, with_groups: 'true', limit: '1' } }), 'GET /targets')).items[0]?.groups ?? [],
  )
  const credentialId = () => (t().connection.type === 'agent' ? null : (t().connection as { credential_id: string | null }).credential_id)
  const [credential] = createResource(() => (can('operator') ? credentialId() : null), getCredential)
  const [keys, { refetch: refetchKeys }] = createResource(() => (t().connection.type === 'ssh' ? t().id : null), hostKeys)

  const [result, setResult] = createSignal<ConnectionTestResult | null>(null)
  const test = createAction(async (via: 'ssh' | 'winrm') => {
    setResult(null)
    const r = await testConnection(t().id, via)
    setResult(r)
    if (r.ok) props.refetch()
    if (via === 'ssh') void refetchKeys()
  })
  const runTest = () => {
    const via = transport()
    if (via) void test.run(via)
  }

  const [decision, setDecision] = createSignal<{ key: HostKey; action: 'approve' | 'revoke' } | null>(null)
  const decide = createAction(async (d: { key: HostKey; action: 'approve' | 'revoke' }) => {
    await decideHostKey(t().id, d.key.id, d.action)
    setDecision(null)
    notice.show(d.action === 'approve' ? `Host key ${d.key.fingerprint} is trusted.` : `Host key ${d.key.fingerprint} is revoked.`)
    await refetchKeys()
    // A pending key shown in the test result is decided now.
    const r = result()
    if (r && !r.ok && r.pending_host_keys) setResult({ ...r, pending_host_keys: r.pending_host_keys.filter((k) => k.id !== d.key.id) })
  })

  return (
    <>
      <PageHeader
        title={t().name}
        subtitle={`${t().address} · ${OS_LABELS[t().os_type as OsType] ?? t().os_type}`}
        actions={
          <Show when={canWrite()}>
            <Show when={transport()}>
              <button type="button" class="button primary" disabled={test.pending()} onClick={runTest}>
                {test.pending() ? 'Testing…' : 'Test connection'}
              </button>
            </Show>
            <A href={`/targets/${t().id}/edit`} class="button">
              Edit
            </A>
            <ConfirmButton
              label="Delete"
              title="Delete target"
              confirmLabel="Delete target"
              danger
              errorTitle="Could not delete the target"
              action={async () => {
                await deleteTarget(t().id)
                navigate('/targets', { replace: true })
              }}
            >
              <p>
                Delete <strong>{t().name}</strong> ({t().address})? Its host keys and group memberships are removed too. Runs that already used it keep their history.
              </p>
            </ConfirmButton>
          </Show>
        }
      />
      <p class="crumbs">
        <A href="/targets">← All targets</A>
      </p>
      {notice.view()}
      <Show when={t().warnings.length}>
        <ul class="warnings" aria-label="Warnings">
          <For each={t().warnings}>{(w) => <li class="warning-line">{w}</li>}</For>
        </ul>
      </Show>

      <div aria-live="polite" class="test-result-region">
        <Switch>
          <Match when={test.pending()}>
            <div class="card test-result" aria-busy="true">
              Connecting to {t().address} over {transport() === 'ssh' ? 'SSH' : 'WinRM'}…
            </div>
          </Match>
          <Match when={test.error()}>{(err) => <ErrorPanel title="Could not run the connection test" error={err()} onRetry={runTest} />}</Match>
          <Match when={result()}>{(r) => <TestResult result={r()} canWrite={canWrite()} onDecide={(key, action) => setDecision({ key, action })} />}</Match>
        </Switch>
      </div>

      <div class="card-grid detail-grid">
        <section class="card" aria-labelledby="td-overview">
          <h2 id="td-overview">Overview</h2>
          <dl class="facts">
            <dt>Status</dt>
            <dd>
              <TargetStatus enabled={t().enabled} online={t().online} />
            </dd>
            <dt>Address</dt>
            <dd class="mono">{t().address}</dd>
            <dt>OS type</dt>
            <dd>{OS_LABELS[t().os_type as OsType] ?? t().os_type}</dd>
            <dt>Last seen</dt>
            <dd>{formatDateTime(t().last_seen_at)}</dd>
            <Show when={t().description}>
              <dt>Description</dt>
              <dd>{t().description}</dd>
            </Show>
            <dt>Tags</dt>
            <dd>
              <Chips items={tagPairs(t().tags)} label="Tags" max={50} />
            </dd>
            <dt>Groups</dt>
            <dd>
              <Show when={!groups.loading} fallback={<span class="muted">Loading…</span>}>
                <Show when={(groups() ?? []).length} fallback={<span class="muted">—</span>}>
                  <ul class="chips" aria-label="Groups">
                    <For each={groups()}>
                      {(g) => (
                        <li class="chip">
                          <A href={`/targets?group=${g.id}`}>{g.name}</A>
                        </li>
                      )}
                    </For>
                  </ul>
                </Show>
              </Show>
            </dd>
          </dl>
        </section>

        <section class="card" aria-labelledby="td-conn">
          <h2 id="td-conn">Connection</h2>
          <ConnectionFacts target={t()} credentialName={credential() ? `${credential()!.name} (${TYPE_LABELS[credential()!.type]})` : undefined} />
        </section>

        <section class="card facts-card" aria-labelledby="td-facts">
          <h2 id="td-facts">Facts</h2>
          <Show when={t().facts} fallback={<p class="muted">No facts yet. {transport() ? 'Test the connection to collect them.' : 'The agent reports them when it connects.'}</p>}>
            {(facts) => (
              <>
                <FactList facts={facts()} />
                <p class="hint">Collected {formatDateTime(t().facts_updated_at)}</p>
              </>
            )}
          </Show>
        </section>
      </div>

      <Show when={t().connection.type === 'ssh'}>
        <section class="card host-keys" aria-labelledby="td-keys">
          <h2 id="td-keys">SSH host keys</h2>
          <Loaded resource={keys} what="host keys" onRetry={() => void refetchKeys()}>
            {() => (
              <Show when={keys.latest?.items.length} fallback={<p class="muted">No host key recorded yet: the first connection records it{(t().connection as { host_key_policy: string }).host_key_policy === 'strict' ? ' as pending, for approval' : ''}.</p>}>
                <HostKeyTable keys={keys.latest!.items} canWrite={canWrite()} onDecide={(key, action) => setDecision({ key, action })} />
              </Show>
            )}
          </Loaded>
        </section>
      </Show>

      <Show when={decision()} keyed>
        {(d) => (
          <ConfirmDialog
            title={d.action === 'approve' ? 'Trust host key' : 'Revoke host key'}
            confirmLabel={d.action === 'approve' ? 'Trust key' : 'Revoke key'}
            danger={d.action === 'revoke'}
            pending={decide.pending()}
            error={decide.error()}
            errorTitle="Could not change the host key"
            onConfirm={() => void decide.run(d)}
            onCancel={() => (setDecision(null), decide.clear())}
          >
            <p>
              {d.action === 'approve'
                ? `Trust this ${d.key.key_type} key for ${t().name}? Compare the fingerprint with the one the host shows (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). A key trusted before is revoked.`
                : `Revoke this ${d.key.key_type} key of ${t().name}? Connections that present it are refused from now on.`}
            </p>
            <p class="fingerprint mono">{d.key.fingerprint}</p>
          </ConfirmDialog>
        )}
      </Show>
    </>
  )
}

function ConnectionFacts(props: { target: Target; credentialName: string | undefined }) {
  const c = () => props.target.connection
  const credentialId = () => (c().type === 'agent' ? null : (c() as { credential_id: string | null }).credential_id)
  return (
    <dl class="facts">
      <dt>Transport</dt>
      <dd>{connectionSummary(c())}</dd>
      <Show when={c().type !== 'agent'}>
        <dt>Credential</dt>
        <dd>
          <Show when={credentialId()} fallback={<span class="muted">None</span>}>
            {(id) => (
              <Show when={can('operator')} fallback={<span class="mono">{id()}</span>}>
                <A href={`/credentials/${id()}`}>{props.credentialName ?? id()}</A>
              </Show>
            )}
          </Show>
        </dd>
      </Show>
      <Switch>
        <Match when={c().type === 'ssh' && (c() as Extract<Target['connection'], { type: 'ssh' }>)}>
          {(ssh) => (
            <>
              <dt>Host-key policy</dt>
              <dd>{{ strict: 'Strict (approved keys only)', tofu: 'Trust on first use', off: 'Off (any key)' }[ssh().host_key_policy]}</dd>
              <Show when={ssh().jump.length}>
                <dt>Jump hosts</dt>
                <dd>
                  <ol class="plain-list">
                    <For each={ssh().jump}>
                      {(h) => (
                        <li>
                          <JumpHostLink id={h.target_id} />
                        </li>
                      )}
                    </For>
                  </ol>
                </dd>
              </Show>
            </>
          )}
        </Match>
        <Match when={c().type === 'winrm' && (c() as Extract<Target['connection'], { type: 'winrm' }>)}>
          {(w) => (
            <>
              <dt>TLS</dt>
              <dd>{w().https ? (w().verify_tls ? 'HTTPS, certificate verified' : 'HTTPS, certificate not verified') : 'Plain HTTP'}</dd>
            </>
          )}
        </Match>
        <Match when={c().type === 'agent' && (c() as Extract<Target['connection'], { type: 'agent' }>)}>
          {(a) => (
            <>
              <dt>Agent</dt>
              <dd class="mono">{a().agent_id ?? 'not bound yet'}</dd>
            </>
          )}
        </Match>
      </Switch>
    </dl>
  )
}

function JumpHostLink(props: { id: string }) {
  const [hop] = createResource(() => props.id, (id) => getTarget(id).catch(() => null))
  return <A href={`/targets/${props.id}`}>{hop()?.name ?? props.id}</A>
}

const FACT_LABELS: Record<string, string> = {
  hostname: 'Host name',
  os_name: 'Operating system',
  os_version: 'OS version',
  kernel: 'Kernel',
  arch: 'Architecture',
  cpu_count: 'CPUs',
  memory_bytes: 'Memory',
  uptime_sec: 'Uptime',
  os_pretty_name: 'OS release',
  kernel_name: 'Kernel name',
}

function factValue(key: string, value: unknown): string {
  if (key.endsWith('_bytes') && typeof value === 'number') return formatBytes(value)
  if (key === 'uptime_sec' && typeof value === 'number') return formatDuration(value)
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value)
}

interface Disk {
  mount: string
  size_bytes: number
  free_bytes: number
}

/** Facts as a target reported them: known ones labelled and formatted, disks as a table, the rest as given. */
export function FactList(props: { facts: Record<string, unknown> }) {
  const entries = () => Object.entries(props.facts).filter(([k]) => k !== 'disks')
  const ordered = () => [...entries()].sort(([a], [b]) => (FACT_LABELS[a] ? Object.keys(FACT_LABELS).indexOf(a) : 99) - (FACT_LABELS[b] ? Object.keys(FACT_LABELS).indexOf(b) : 99))
  const disks = () => (Array.isArray(props.facts.disks) ? (props.facts.disks as Disk[]) : [])
  return (
    <>
      <dl class="facts">
        <For each={ordered()}>
          {([k, v]) => (
            <>
              <dt>{FACT_LABELS[k] ?? k.charAt(0).toUpperCase() + k.slice(1).replace(/_/g, ' ')}</dt>
              <dd>{factValue(k, v)}</dd>
            </>
          )}
        </For>
      </dl>
      <Show when={disks().length}>
        <DataTable label="Disks" columns={['Mount', 'Size', 'Free']} wrapClass="disks" each={disks()}>
          {(d) => (
            <tr>
              <td class="mono">{d.mount}</td>
              <td>{formatBytes(d.size_bytes)}</td>
              <td>{formatBytes(d.free_bytes)}</td>
            </tr>
          )}
        </DataTable>
      </Show>
    </>
  )
}

function TestResult(props: { result: ConnectionTestResult; canWrite: boolean; onDecide: (key: HostKey, action: 'approve' | 'revoke') => void }) {
  const via = () => (props.result.transport === 'ssh' ? 'SSH' : 'WinRM')
  return (
    <Show
      when={props.result.ok ? props.result : null}
      fallback={
        <Show when={!props.result.ok ? props.result : null}>
          {(fail) => (
            <div class="card test-result failed" role="alert">
              <h2>Connection test failed: {FAILURE_LABELS[fail().failure] ?? fail().failure}</h2>
              <p class="test-message">
                <code class="error-code">{fail().failure}</code>
                {fail().message}
              </p>
              <p class="hint">
                After {fail().latency_ms} ms over {via()}, {formatDateTime(fail().tested_at)}.
              </p>
              <Show when={fail().pending_host_keys?.length}>
                <p>The host presented a key that is not trusted yet. Compare its fingerprint with the host's own, then trust it:</p>
                <HostKeyTable keys={fail().pending_host_keys!} canWrite={props.canWrite} onDecide={props.onDecide} />
              </Show>
            </div>
          )}
        </Show>
      }
    >
      {(ok) => (
        <div class="card test-result passed" role="status">
          <h2>Connected over {via()} in {ok().latency_ms} ms</h2>
          <FactList facts={ok().facts} />
          <p class="hint">Tested {formatDateTime(ok().tested_at)}; the facts are saved with the target.</p>
        </div>
      )}
    </Show>
  )
}

const KEY_TONE: Record<HostKey['status'], Tone> = { trusted: 'good', pending: 'neutral', revoked: 'bad' }

function HostKeyTable(props: { keys: HostKey[]; canWrite: boolean; onDecide: (key: HostKey, action: 'approve' | 'revoke') => void }) {
  return (
    <DataTable label="SSH host keys" columns={['Type', 'Fingerprint', 'Status', 'First seen', 'Decided', ...(props.canWrite ? [''] : [])]} class="host-key-table" each={props.keys}>
      {(k) => (
        <tr>
          <td>{k.key_type}</td>
          <td class="mono fingerprint">{k.fingerprint}</td>
          <td>
            <Badge tone={KEY_TONE[k.status]}>{k.status}</Badge>
          </td>
          <td>{formatDateTime(k.first_seen_at)}</td>
          <td class="decided">{k.decided_at ? `${formatDateTime(k.decided_at)} by ${k.decided_by ?? '?'}` : '—'}</td>
          <Show when={props.canWrite}>
            <td class="actions">
              <Show when={k.status !== 'trusted'}>
                <button type="button" class="button small" aria-label={`Trust key ${k.fingerprint}`} onClick={() => props.onDecide(k, 'approve')}>
                  Trust
                </button>
              </Show>
              <Show when={k.status !== 'revoked'}>
                <button type="button" class="button small danger" aria-label={`Revoke key ${k.fingerprint}`} onClick={() => props.onDecide(k, 'revoke')}>
                  Revoke
                </button>
              </Show>
            </td>
          </Show>
        </tr>
      )}
    </DataTable>
  )
}

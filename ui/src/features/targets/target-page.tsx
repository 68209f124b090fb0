import { A, useLocation, useNavigate, useParams } from '@solidjs/router'
import { createResource, createSignal, For, Match, Show, Switch } from 'solid-js'
import type { FailureClass } from '../../../../controller/src/targets/connection-test.ts'
import { api, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { getCredential, TYPE_LABELS } from '../credentials/data.ts'
import {
  connectionSummary,
  decideHostKey,
  deleteTarget,
  formatBytes,
  formatDuration,
  formatTime,
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
import { ConfirmDialog } from './dialog.tsx'
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
      {/* Not Loaded: its keyed child would be made anew by a refetch, dropping the test result on screen. */}
      <Switch fallback={<div class="card card-loading" aria-busy="true">Loading the target…</div>}>
        <Match when={target.error as unknown}>{(err) => <ErrorPanel title="Could not load the target" error={err()} onRetry={() => void refetch()} />}</Match>
        <Match when={target.latest !== undefined}>
          <TargetView target={target.latest!} refetch={() => void refetch()} />
        </Match>
      </Switch>
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

  const [testing, setTesting] = createSignal(false)
  const [result, setResult] = createSignal<ConnectionTestResult | null>(null)
  const [testError, setTestError] = createSignal<unknown>(null)
  const runTest = async () => {
    const via = transport()
    if (!via) return
    setTesting(true)
    setResult(null)
    setTestError(null)
    try {
      const r = await testConnection(t().id, via)
      setResult(r)
      if (r.ok) props.refetch()
      if (via === 'ssh') void refetchKeys()
    } catch (err) {
      setTestError(err)
    } finally {
      setTesting(false)
    }
  }

  const [confirmDelete, setConfirmDelete] = createSignal(false)
  const [deleting, setDeleting] = createSignal(false)
  const [deleteError, setDeleteError] = createSignal<unknown>(null)
  const remove = async () => {
    setDeleting(true)
    setDeleteError(null)
    try {
      await deleteTarget(t().id)
      navigate('/targets', { replace: true })
    } catch (err) {
      setDeleteError(err)
    } finally {
      setDeleting(false)
    }
  }

  const [decision, setDecision] = createSignal<{ key: HostKey; action: 'approve' | 'revoke' } | null>(null)
  const [deciding, setDeciding] = createSignal(false)
  const [decideError, setDecideError] = createSignal<unknown>(null)
  const decide = async () => {
    const d = decision()
    if (!d) return
    setDeciding(true)
    setDecideError(null)
    try {
      await decideHostKey(t().id, d.key.id, d.action)
      setDecision(null)
      notice.show(d.action === 'approve' ? `Host key ${d.key.fingerprint} is trusted.` : `Host key ${d.key.fingerprint} is revoked.`)
      await refetchKeys()
      // A pending key shown in the test result is decided now.
      const r = result()
      if (r && !r.ok && r.pending_host_keys) setResult({ ...r, pending_host_keys: r.pending_host_keys.filter((k) => k.id !== d.key.id) })
    } catch (err) {
      setDecideError(err)
    } finally {
      setDeciding(false)
    }
  }

  return (
    <>
      <PageHeader
        title={t().name}
        subtitle={`${t().address} · ${OS_LABELS[t().os_type as OsType] ?? t().os_type}`}
        actions={
          <Show when={canWrite()}>
            <Show when={transport()}>
              <button type="button" class="button primary" disabled={testing()} onClick={() => void runTest()}>
                {testing() ? 'Testing…' : 'Test connection'}
              </button>
            </Show>
            <A href={`/targets/${t().id}/edit`} class="button">
              Edit
            </A>
            <button type="button" class="button danger" onClick={() => setConfirmDelete(true)}>
              Delete
            </button>
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
          <Match when={testing()}>
            <div class="card test-result" aria-busy="true">
              Connecting to {t().address} over {transport() === 'ssh' ? 'SSH' : 'WinRM'}…
            </div>
          </Match>
          <Match when={testError()}>{(err) => <ErrorPanel title="Could not run the connection test" error={err()} onRetry={() => void runTest()} />}</Match>
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
            <dd>{formatTime(t().last_seen_at)}</dd>
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
                <p class="hint">Collected {formatTime(t().facts_updated_at)}</p>
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

      <ConfirmDialog
        open={confirmDelete()}
        title="Delete target"
        confirmLabel="Delete target"
        danger
        pending={deleting()}
        onConfirm={() => void remove()}
        onClose={() => {
          setConfirmDelete(false)
          setDeleteError(null)
        }}
        error={<Show when={deleteError()}>{(err) => <ErrorPanel title="Could not delete the target" error={err()} />}</Show>}
      >
        <p>
          Delete <strong>{t().name}</strong> ({t().address})? Its host keys and group memberships are removed too. Runs that already used it keep their history.
        </p>
      </ConfirmDialog>

      <ConfirmDialog
        open={decision() !== null}
        title={decision()?.action === 'approve' ? 'Trust host key' : 'Revoke host key'}
        confirmLabel={decision()?.action === 'approve' ? 'Trust key' : 'Revoke key'}
        danger={decision()?.action === 'revoke'}
        pending={deciding()}
        onConfirm={() => void decide()}
        onClose={() => {
          setDecision(null)
          setDecideError(null)
        }}
        error={<Show when={decideError()}>{(err) => <ErrorPanel title="Could not change the host key" error={err()} />}</Show>}
      >
        <Show when={decision()}>
          {(d) => (
            <>
              <p>
                {d().action === 'approve'
                  ? `Trust this ${d().key.key_type} key for ${t().name}? Compare the fingerprint with the one the host shows (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). A key trusted before is revoked.`
                  : `Revoke this ${d().key.key_type} key of ${t().name}? Connections that present it are refused from now on.`}
              </p>
              <p class="fingerprint mono">{d().key.fingerprint}</p>
            </>
          )}
        </Show>
      </ConfirmDialog>
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
        <div class="table-wrap disks">
          <table class="data">
            <caption class="visually-hidden">Disks</caption>
            <thead>
              <tr>
                <th scope="col">Mount</th>
                <th scope="col">Size</th>
                <th scope="col">Free</th>
              </tr>
            </thead>
            <tbody>
              <For each={disks()}>
                {(d) => (
                  <tr>
                    <td class="mono">{d.mount}</td>
                    <td>{formatBytes(d.size_bytes)}</td>
                    <td>{formatBytes(d.free_bytes)}</td>
                  </tr>
                )}
              </For>
            </tbody>
          </table>
        </div>
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
                After {fail().latency_ms} ms over {via()}, {formatTime(fail().tested_at)}.
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
          <p class="hint">Tested {formatTime(ok().tested_at)}; the facts are saved with the target.</p>
        </div>
      )}
    </Show>
  )
}

const KEY_TONE: Record<HostKey['status'], string> = { trusted: 'tone-good', pending: 'tone-neutral', revoked: 'tone-bad' }

function HostKeyTable(props: { keys: HostKey[]; canWrite: boolean; onDecide: (key: HostKey, action: 'approve' | 'revoke') => void }) {
  return (
    <div class="table-wrap">
      <table class="data host-key-table">
        <caption class="visually-hidden">SSH host keys</caption>
        <thead>
          <tr>
            <th scope="col">Type</th>
            <th scope="col">Fingerprint</th>
            <th scope="col">Status</th>
            <th scope="col">First seen</th>
            <th scope="col">Decided</th>
            <Show when={props.canWrite}>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </Show>
          </tr>
        </thead>
        <tbody>
          <For each={props.keys}>
            {(k) => (
              <tr>
                <td>{k.key_type}</td>
                <td class="mono fingerprint">{k.fingerprint}</td>
                <td>
                  <span class={`badge small ${KEY_TONE[k.status]}`}>{k.status}</span>
                </td>
                <td>{formatTime(k.first_seen_at)}</td>
                <td class="decided">{k.decided_at ? `${formatTime(k.decided_at)} by ${k.decided_by ?? '?'}` : '—'}</td>
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
          </For>
        </tbody>
      </table>
    </div>
  )
}

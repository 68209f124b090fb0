import { A } from '@solidjs/router'
import { createMemo, createSignal, For, Show } from 'solid-js'
import { createAction } from '../../components/action.ts'
import { Badge, type Tone } from '../../components/badge.tsx'
import { ConfirmDialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { SelectField, TextAreaField } from '../../components/form.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { VirtualList } from '../../components/virtual-list.tsx'
import { can } from '../../session.ts'
import { formatNumber, importTargets, type ImportFormat, type ImportReport } from './data.ts'
import { TargetsNav } from './targets-nav.tsx'
import './targets.css'

/*
 * Bulk import: a CSV or JSON file (or pasted text) is first checked by the server without writing
 * anything (dry run), and the preview shows what each row would do — create, update (matched by
 * name), or be rejected and why. Only then is it committed, in one transaction.
 */

const CSV_COLUMNS = 'name, address, os_type, description, enabled, tags (k=v;k=v), connection_type, port, credential (name), host_key_policy, https, verify_tls, groups (a;b)'
const ROW_HEIGHT = 40

type Action = ImportReport['rows'][number]['action']
const ACTION_LABELS: Record<Action, string> = { create: 'Create', update: 'Update', reject: 'Reject' }
const ACTION_TONE: Record<Action, Tone> = { create: 'good', update: 'neutral', reject: 'bad' }

function guessFormat(text: string, fileName?: string): ImportFormat {
  if (fileName?.toLowerCase().endsWith('.json')) return 'json'
  if (fileName?.toLowerCase().endsWith('.csv')) return 'csv'
  return /^\s*[[{]/.test(text) ? 'json' : 'csv'
}

export function ImportPage() {
  const [text, setText] = createSignal('')
  const [fileName, setFileName] = createSignal<string | null>(null)
  const [format, setFormat] = createSignal<ImportFormat>('csv')
  const [preview, setPreview] = createSignal<ImportReport | null>(null)
  const [committed, setCommitted] = createSignal<ImportReport | null>(null)
  const [show, setShow] = createSignal<Action | 'all'>('all')
  const [confirming, setConfirming] = createSignal(false)

  const changed = (value: string, name?: string) => {
    setText(value)
    setFormat(guessFormat(value, name))
    setPreview(null)
    setCommitted(null)
    dryRun.clear()
  }
  const onFile = async (file: File | undefined) => {
    if (!file) return
    setFileName(file.name)
    changed(await file.text(), file.name)
  }

  const dryRun = createAction(async () => {
    setCommitted(null)
    const report = await importTargets(text(), format(), true)
    setPreview(report)
    setShow(report.rejected ? 'reject' : 'all')
  })
  const commit = createAction(async () => {
    const report = await importTargets(text(), format(), false)
    setConfirming(false)
    setPreview(null)
    setCommitted(report)
  })

  const rows = createMemo(() => {
    const p = preview()
    if (!p) return []
    return show() === 'all' ? p.rows : p.rows.filter((r) => r.action === show())
  })
  const writes = () => (preview()?.created ?? 0) + (preview()?.updated ?? 0)

  return (
    <div class="targets-area">
      <PageHeader title="Targets" subtitle="Hosts and devices OpsConductor runs work on." />
      <TargetsNav />
      <Show when={can('operator')} fallback={<p>Importing targets needs the operator role.</p>}>
        <section class="card import-card" aria-labelledby="imp-source">
          <h2 id="imp-source">Import targets</h2>
          <p>
            Rows are matched to existing targets by name: new names are created, known ones updated. Credentials and groups are named. Nothing is written until you have seen the preview.
          </p>
          <details class="columns-help">
            <summary>CSV columns and JSON shape</summary>
            <p>
              CSV, with a header row: <span class="mono">{CSV_COLUMNS}</span>.
            </p>
            <p>
              JSON: an array of targets as the API takes them (or <span class="mono">{'{"targets": [...]}'}</span>, what Export JSON writes), with <span class="mono">credential</span> and <span class="mono">groups</span> by name.
            </p>
          </details>
          <div class="import-source">
            <div class="field">
              <label for="import-file">File (CSV or JSON)</label>
              <input id="import-file" type="file" accept=".csv,.json,text/csv,application/json" onChange={(e) => void onFile(e.currentTarget.files?.[0])} />
              <Show when={fileName()}>{(n) => <p class="hint">{n()} loaded</p>}</Show>
            </div>
            <SelectField label="Format" value={format()} onChange={(e) => setFormat(e.currentTarget.value as ImportFormat)}>
              <option value="csv">CSV</option>
              <option value="json">JSON</option>
            </SelectField>
          </div>
          <TextAreaField
            label="Or paste the contents"
            rows={8}
            spellcheck={false}
            placeholder={'name,address,os_type,connection_type,credential,tags\nweb-01,10.0.0.11,linux,ssh,deploy-key,env=prod;role=web'}
            value={text()}
            onInput={(e) => {
              setFileName(null)
              changed(e.currentTarget.value)
            }}
          />
          <Show when={dryRun.error()}>{(err) => <ErrorPanel title="The file could not be checked" error={err()} />}</Show>
          <div class="form-actions">
            <button type="button" class="button primary" disabled={!text().trim() || dryRun.pending()} onClick={() => void dryRun.run()}>
              {dryRun.pending() ? 'Checking…' : 'Preview import'}
            </button>
          </div>
        </section>

        <Show when={committed()}>
          {(r) => (
            <div class="card import-done" role="status">
              <h2>Import finished</h2>
              <p>
                {formatNumber(r().created)} created, {formatNumber(r().updated)} updated{r().rejected ? `, ${formatNumber(r().rejected)} rejected rows skipped` : ''}.
              </p>
              <A href="/targets" class="button">
                View targets
              </A>
            </div>
          )}
        </Show>

        <Show when={preview()}>
          {(p) => (
            <section class="card import-preview" aria-labelledby="imp-preview">
              <h2 id="imp-preview">Preview (nothing written yet)</h2>
              <p class="import-summary" role="status">
                <Badge tone="good">{formatNumber(p().created)} to create</Badge>
                <Badge tone="neutral">{formatNumber(p().updated)} to update</Badge>
                <Badge tone={p().rejected ? 'bad' : 'neutral'}>{formatNumber(p().rejected)} rejected</Badge>
              </p>
              <div class="toolbar">
                <SelectField label="Show rows" value={show()} onChange={(e) => setShow(e.currentTarget.value as Action | 'all')}>
                  <option value="all">All ({formatNumber(p().rows.length)})</option>
                  <option value="create">To create ({formatNumber(p().created)})</option>
                  <option value="update">To update ({formatNumber(p().updated)})</option>
                  <option value="reject">Rejected ({formatNumber(p().rejected)})</option>
                </SelectField>
              </div>
              <div class="vtable-wrap">
                <div class="vtable import-table" role="table" aria-label="Import preview" aria-rowcount={rows().length + 1}>
                  <div role="rowgroup" class="vtable-head">
                    <div role="row" class="vtable-row" aria-rowindex={1}>
                      <span role="columnheader">Row</span>
                      <span role="columnheader">Name</span>
                      <span role="columnheader">Result</span>
                      <span role="columnheader">Reasons</span>
                    </div>
                  </div>
                  <VirtualList items={rows()} rowHeight={ROW_HEIGHT} height={`${Math.min(Math.max(rows().length, 1), 12) * ROW_HEIGHT + 2}px`} label="Import rows" class="vtable-body" role="rowgroup">
                    {(r, i) => (
                      <div role="row" class="vtable-row" aria-rowindex={i() + 2}>
                        <span role="cell">{r.row}</span>
                        <span role="cell" class="cell-clip mono">
                          {r.name ?? '—'}
                        </span>
                        <span role="cell">
                          <Badge tone={ACTION_TONE[r.action]}>{ACTION_LABELS[r.action]}</Badge>
                        </span>
                        <span role="cell" class="cell-clip reasons" title={(r.errors ?? []).map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join('; ')}>
                          <For each={r.errors ?? []}>
                            {(e) => (
                              <span class="reason">
                                <Show when={e.path}>
                                  <span class="mono">{e.path}</span>:{' '}
                                </Show>
                                {e.message}
                              </span>
                            )}
                          </For>
                        </span>
                      </div>
                    )}
                  </VirtualList>
                </div>
              </div>
              <div class="form-actions">
                <Show when={p().rejected > 0 && writes() > 0}>
                  <p class="hint">Rejected rows are skipped; the others are imported.</p>
                </Show>
                <button type="button" class="button primary" disabled={writes() === 0} onClick={() => setConfirming(true)}>
                  Import {formatNumber(writes())} {writes() === 1 ? 'target' : 'targets'}
                </button>
              </div>
            </section>
          )}
        </Show>

        <Show when={confirming() && preview()}>
          {(p) => (
            <ConfirmDialog
              title="Import targets"
              confirmLabel="Import now"
              pending={commit.pending()}
              onConfirm={() => void commit.run()}
              onCancel={() => (setConfirming(false), commit.clear())}
              error={commit.error()}
              errorTitle="The import failed; nothing was written"
            >
              <p>
                Create {formatNumber(p().created)} and update {formatNumber(p().updated)} targets
                {p().rejected ? `, skipping ${formatNumber(p().rejected)} rejected rows` : ''}? Updated targets take the file's values for every column.
              </p>
            </ConfirmDialog>
          )}
        </Show>
      </Show>
    </div>
  )
}

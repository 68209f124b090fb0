import { A } from '@solidjs/router'
import { createEffect, createResource, createSignal, on, onCleanup, Show } from 'solid-js'
import { createAction } from '../../components/action.ts'
import { DataTable } from '../../components/data-table.tsx'
import { ConfirmDialog, Dialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, TextAreaField } from '../../components/form.tsx'
import { EmptyState, Loaded } from '../../components/loaded.tsx'
import { PageHeader } from '../../components/page-header.tsx'
import { can } from '../../session.ts'
import { createGroup, deleteGroup, formatNumber, listGroups, resolveSelector, updateGroup, type Group, type ResolveAnswer } from './data.ts'
import { createNotice } from './parts.tsx'
import { TargetsNav } from './targets-nav.tsx'
import './targets.css'

/*
 * Target groups: static members (added from the targets table's bulk actions) and/or a dynamic
 * selector (`os=linux,env=prod`), previewed against the fleet as it is typed.
 */

export function GroupsPage() {
  const [groups, { refetch }] = createResource(listGroups)
  const [editing, setEditing] = createSignal<Group | 'new' | null>(null)
  const [removing, setRemoving] = createSignal<Group | null>(null)
  const notice = createNotice()
  const canWrite = () => can('operator')

  return (
    <div class="targets-area">
      <PageHeader
        title="Targets"
        subtitle="Hosts and devices OpsConductor runs work on."
        actions={
          <Show when={canWrite()}>
            <button type="button" class="button primary" onClick={() => setEditing('new')}>
              New group
            </button>
          </Show>
        }
      />
      <TargetsNav />
      {notice.view()}
      <Loaded resource={groups} what="groups" onRetry={() => void refetch()}>
        {() => (
          <Show
            when={groups.latest?.length}
            fallback={
              <EmptyState title="No groups yet">
                <p>A group names a set of targets: pick them in the targets table (Add to group), give a selector such as os=linux,env=prod, or both.</p>
              </EmptyState>
            }
          >
            <DataTable label="Target groups" columns={['Name', 'Selector', 'Static members', 'Description', '']} class="groups-table" each={groups.latest}>
              {(g) => (
                <tr>
                  <th scope="row" class="row-name">
                    <A href={`/targets?group=${g.id}`} title={`Targets in ${g.name}`}>
                      {g.name}
                    </A>
                  </th>
                  <td class="mono">{g.selector ?? '—'}</td>
                  <td>{formatNumber(g.static_members)}</td>
                  <td class="cell-wrap">{g.description ?? ''}</td>
                  <td class="actions">
                    <A href={`/targets?group=${g.id}`} class="button small">
                      View targets
                    </A>
                    <Show when={canWrite()}>
                      <button type="button" class="button small" aria-label={`Edit group ${g.name}`} onClick={() => setEditing(g)}>
                        Edit
                      </button>
                      <button type="button" class="button small danger" aria-label={`Delete group ${g.name}`} onClick={() => setRemoving(g)}>
                        Delete
                      </button>
                    </Show>
                  </td>
                </tr>
              )}
            </DataTable>
          </Show>
        )}
      </Loaded>

      <Show when={editing()} keyed>
        {(group) => (
          <GroupDialog
            group={group}
            onClose={() => setEditing(null)}
            onSaved={(g, created) => {
              setEditing(null)
              notice.show(created ? `Group ${g.name} created.` : `Group ${g.name} saved.`)
              void refetch()
            }}
          />
        )}
      </Show>
      <Show when={removing()} keyed>
        {(group) => (
          <DeleteGroup
            group={group}
            onClose={() => setRemoving(null)}
            onDeleted={(g) => {
              setRemoving(null)
              notice.show(`Group ${g.name} deleted.`)
              void refetch()
            }}
          />
        )}
      </Show>
    </div>
  )
}

function DeleteGroup(props: { group: Group; onClose: () => void; onDeleted: (g: Group) => void }) {
  const del = createAction(async () => {
    await deleteGroup(props.group.id)
    props.onDeleted(props.group)
  })
  return (
    <ConfirmDialog
      title="Delete group"
      confirmLabel="Delete group"
      danger
      pending={del.pending()}
      onConfirm={() => void del.run()}
      onCancel={props.onClose}
      error={del.error()}
      errorTitle="Could not delete the group"
    >
      <p>
        Delete group <strong>{props.group.name}</strong>? Its targets stay; jobs and schedules that select <span class="mono">group:{props.group.name}</span> would select nothing.
      </p>
    </ConfirmDialog>
  )
}

function GroupDialog(props: { group: Group | 'new'; onClose: () => void; onSaved: (g: Group, created: boolean) => void }) {
  const existing = () => (props.group !== 'new' ? props.group : null)
  const [name, setName] = createSignal(existing()?.name ?? '')
  const [description, setDescription] = createSignal(existing()?.description ?? '')
  const [selector, setSelector] = createSignal(existing()?.selector ?? '')
  const save = createSubmit(async () => {
    const body = { name: name(), description: description().trim() || null, selector: selector().trim() || null }
    const g = existing()
    const saved = g ? await updateGroup(g.id, body) : await createGroup(body)
    props.onSaved(saved, !g)
  })

  // Live preview of the selector: how many targets it picks now.
  const [preview, setPreview] = createSignal<ResolveAnswer | null>(null)
  const [previewError, setPreviewError] = createSignal<string | null>(null)
  let timer: ReturnType<typeof setTimeout> | undefined
  let ctrl: AbortController | undefined
  createEffect(
    on(selector, (sel) => {
      clearTimeout(timer)
      ctrl?.abort()
      setPreview(null)
      setPreviewError(null)
      if (!sel.trim()) return
      timer = setTimeout(() => {
        const c = (ctrl = new AbortController())
        resolveSelector(sel.trim(), c.signal).then(
          (r) => !c.signal.aborted && setPreview(r),
          (err: Error) => !c.signal.aborted && setPreviewError(err.message),
        )
      }, 300)
    }),
  )
  onCleanup(() => {
    clearTimeout(timer)
    ctrl?.abort()
  })

  return (
    <Dialog title={existing() ? `Edit group ${existing()!.name}` : 'New group'} onClose={props.onClose} wide busy={save.pending()}>
      <form onSubmit={(e) => void save.submit(e)} novalidate>
        <Show when={save.error()}>{(err) => <ErrorPanel title="Could not save the group" error={err()} />}</Show>
        <Field label="Name" required value={name()} onInput={(e) => setName(e.currentTarget.value)} error={save.errors().name} />
        <TextAreaField label="Description" rows={2} value={description()} onInput={(e) => setDescription(e.currentTarget.value)} error={save.errors().description} />
        <Field
          label="Selector (optional)"
          class="mono"
          placeholder="os=linux,env=prod | group:canaries"
          value={selector()}
          onInput={(e) => setSelector(e.currentTarget.value)}
          error={save.errors().selector}
          hint="Targets matching it are members, besides any added by hand. Terms: key=value tags, os=, connection=, name:web-*, group:other; comma = and, | = or."
        />
        <div class="selector-preview" aria-live="polite">
          <Show when={preview()}>
            {(p) => (
              <p>
                Matches <strong>{formatNumber(p().count)}</strong> {p().count === 1 ? 'target' : 'targets'} now
                {p().targets.length ? `: ${p().targets.map((t) => t.name).join(', ')}${p().count > p().targets.length ? ', …' : ''}` : ''}
              </p>
            )}
          </Show>
          <Show when={previewError()}>{(m) => <p class="field-error">{m()}</p>}</Show>
        </div>
        <div class="form-actions">
          <button type="button" class="button" onClick={() => props.onClose()}>
            Cancel
          </button>
          <button type="submit" class="button primary" disabled={save.pending()}>
            {save.pending() ? 'Saving…' : existing() ? 'Save group' : 'Create group'}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

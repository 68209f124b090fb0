import { createSignal, For, Show } from 'solid-js'
import { Dialog } from '../../components/dialog.tsx'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { createSubmit, Field, SelectField } from '../../components/form.tsx'
import { bulkInSlices, formatNumber, type BulkBody, type Group, type TargetRow } from './data.ts'
import { messagesUnder, parseTagText } from './parts.tsx'

export type BulkAction = 'add_tags' | 'remove_tags' | 'add_to_group' | 'remove_from_group' | 'enable' | 'disable' | 'delete'

const TITLES: Record<BulkAction, string> = {
  add_tags: 'Add tags',
  remove_tags: 'Remove tags',
  add_to_group: 'Add to group',
  remove_from_group: 'Remove from group',
  enable: 'Enable targets',
  disable: 'Disable targets',
  delete: 'Delete targets',
}

interface Props {
  action: BulkAction
  targets: TargetRow[]
  groups: Group[]
  onClose: () => void
  /** After success: what happened, and whether the targets are gone. */
  onDone: (message: string, removed: boolean) => void
}

/** One bulk change on the selected targets, confirmed with the count and the first names. */
export function BulkDialog(props: Props) {
  const [tags, setTags] = createSignal('')
  const [keys, setKeys] = createSignal('')
  const [groupId, setGroupId] = createSignal(props.groups[0]?.id ?? '')
  const n = () => props.targets.length
  const what = () => `${formatNumber(n())} ${n() === 1 ? 'target' : 'targets'}`
  const groupName = () => props.groups.find((g) => g.id === groupId())?.name ?? ''

  const body = (): BulkBody => {
    const target_ids = props.targets.map((t) => t.id)
    switch (props.action) {
      case 'add_tags':
        return { action: 'add_tags', target_ids, tags: parseTagText(tags()) }
      case 'remove_tags':
        return { action: 'remove_tags', target_ids, keys: keys().split(/[,\s]+/).filter(Boolean) }
      case 'add_to_group':
        return { action: 'add_to_group', target_ids, group_id: groupId() }
      case 'remove_from_group':
        return { action: 'remove_from_group', target_ids, group_id: groupId() }
      case 'enable':
      case 'disable':
        return { action: 'set_enabled', target_ids, enabled: props.action === 'enable' }
      case 'delete':
        return { action: 'delete', target_ids }
    }
  }
  const done = (changed: number): string => {
    const count = `${formatNumber(changed)} ${changed === 1 ? 'target' : 'targets'}`
    switch (props.action) {
      case 'add_tags':
        return `Tags added to ${count}.`
      case 'remove_tags':
        return `Tags removed from ${count}.`
      case 'add_to_group':
        return `${count} added to group ${groupName()}.`
      case 'remove_from_group':
        return `${count} removed from group ${groupName()}.`
      case 'enable':
        return `${count} enabled.`
      case 'disable':
        return `${count} disabled.`
      case 'delete':
        return `${count} deleted.`
    }
  }
  const form = createSubmit(async () => {
    const action = props.action
    const changed = await bulkInSlices(body())
    props.onDone(done(changed), action === 'delete')
  })
  const names = () => props.targets.slice(0, 5).map((t) => t.name)

  return (
    <Dialog title={TITLES[props.action]} onClose={props.onClose} busy={form.pending()}>
      <form onSubmit={(e) => void form.submit(e)}>
        <p>
          <Show when={props.action === 'delete'} fallback={<>This changes {what()}: </>}>
            <strong>Delete {what()}?</strong> Their host keys and group memberships go with them; this cannot be undone.{' '}
          </Show>
          <span class="mono">{names().join(', ')}</span>
          <Show when={n() > names().length}> and {formatNumber(n() - names().length)} more</Show>.
        </p>
        <Show when={props.action === 'add_tags'}>
          <Field label="Tags to add" hint="key=value pairs, separated by commas; existing keys get the new value" placeholder="env=prod, owner=ops" value={tags()} onInput={(e) => setTags(e.currentTarget.value)} error={messagesUnder(form.errors(), 'tags')} required />
        </Show>
        <Show when={props.action === 'remove_tags'}>
          <Field label="Tag keys to remove" hint="keys separated by commas" placeholder="env, owner" value={keys()} onInput={(e) => setKeys(e.currentTarget.value)} error={messagesUnder(form.errors(), 'keys')} required />
        </Show>
        <Show when={props.action === 'add_to_group' || props.action === 'remove_from_group'}>
          <Show when={props.groups.length} fallback={<p class="hint">There are no groups yet: create one on the Groups tab first.</p>}>
            <SelectField label="Group" value={groupId()} onChange={(e) => setGroupId(e.currentTarget.value)} error={form.errors().group_id}>
              <For each={props.groups}>{(g) => <option value={g.id}>{g.name}</option>}</For>
            </SelectField>
          </Show>
        </Show>
        <Show when={form.error()}>{(err) => <ErrorPanel title={`Could not ${TITLES[props.action].toLowerCase()}`} error={err()} />}</Show>
        <div class="form-actions">
          <button type="button" class="button" onClick={() => props.onClose()} data-autofocus={props.action === 'delete' ? '' : undefined}>
            Cancel
          </button>
          <button
            type="submit"
            class={`button ${props.action === 'delete' ? 'danger' : 'primary'}`}
            disabled={form.pending() || ((props.action === 'add_to_group' || props.action === 'remove_from_group') && !groupId())}
            data-autofocus={props.action === 'enable' || props.action === 'disable' ? '' : undefined}
          >
            {form.pending() ? 'Working…' : props.action === 'delete' ? `Delete ${what()}` : TITLES[props.action]}
          </button>
        </div>
      </form>
    </Dialog>
  )
}

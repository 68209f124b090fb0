import { createUniqueId, For, Show, splitProps, type JSX } from 'solid-js'
import { allZones, browserZone } from './time.ts'

type ZoneProps = JSX.InputHTMLAttributes<HTMLInputElement> & { label?: string; error?: string | undefined; value: string; onZone: (zone: string) => void }

/** An IANA time zone: free text with the browser's zones as suggestions, and a shortcut to the browser's own. */
export function ZoneField(props: ZoneProps) {
  const [own, rest] = splitProps(props, ['label', 'error', 'value', 'onZone', 'id'])
  const id = own.id ?? createUniqueId()
  const listId = `${id}-zones`
  const mine = browserZone()
  return (
    <div class="field" classList={{ invalid: !!own.error }}>
      <label for={id}>{own.label ?? 'Time zone'}</label>
      <div class="zone-row">
        <input
          id={id}
          list={listId}
          autocomplete="off"
          spellcheck={false}
          value={own.value}
          onInput={(e) => own.onZone(e.currentTarget.value)}
          aria-invalid={own.error ? 'true' : undefined}
          aria-describedby={`${id}-note`}
          {...rest}
        />
        <Show when={own.value !== mine}>
          <button type="button" class="button small" onClick={() => own.onZone(mine)} title={`Use ${mine}`}>
            Use {mine}
          </button>
        </Show>
      </div>
      <datalist id={listId}>
        <For each={allZones()}>{(z) => <option value={z} />}</For>
      </datalist>
      <p id={`${id}-note`} class={own.error ? 'field-error' : 'hint'}>
        {own.error ?? 'An IANA zone such as UTC, Europe/Berlin or America/New_York.'}
      </p>
    </div>
  )
}

import { createEffect, createSignal, createUniqueId, For, Match, on, onCleanup, Show, Switch } from 'solid-js'
import { ApiError } from '../../api.ts'
import { resolveSelector, type Resolved } from './jobs-api.ts'

/*
 * A target selector with a live preview: 300 ms after the last keystroke the controller resolves
 * it (GET /targets/resolve) and the field shows how many targets it picks and the first of them,
 * or the parser's message (`unexpected "," at 19`). Templates are resolved only at run time.
 */

const DEBOUNCE_MS = 300
const SHOWN = 8

type Preview = { state: 'idle' } | { state: 'loading' } | { state: 'templated' } | { state: 'ok'; result: Resolved } | { state: 'error'; message: string }

interface Props {
  id?: string
  label: string
  value: string
  onInput: (value: string) => void
  /** The server's message for this field (by path), shown instead of the preview's. */
  error?: string | undefined
  hint?: string
  placeholder?: string
  /** What an empty field means, e.g. "the job's targets". */
  emptyMeans?: string
}

export function SelectorField(props: Props) {
  const id = props.id ?? createUniqueId()
  const [preview, setPreview] = createSignal<Preview>({ state: 'idle' })
  let timer: ReturnType<typeof setTimeout> | undefined
  let seq = 0
  onCleanup(() => clearTimeout(timer))

  createEffect(
    on(
      () => props.value.trim(),
      (selector) => {
        clearTimeout(timer)
        const mine = ++seq
        if (selector === '') return setPreview({ state: 'idle' })
        if (selector.includes('{{')) return setPreview({ state: 'templated' })
        setPreview({ state: 'loading' })
        timer = setTimeout(() => {
          resolveSelector(selector, SHOWN).then(
            (result) => mine === seq && setPreview({ state: 'ok', result }),
            (err: unknown) => mine === seq && setPreview({ state: 'error', message: err instanceof ApiError ? err.message : String(err) }),
          )
        }, DEBOUNCE_MS)
      },
    ),
  )

  return (
    <div class="field selector-field" classList={{ invalid: !!props.error || preview().state === 'error' }}>
      <label for={id}>{props.label}</label>
      <input id={id} class="mono-input" value={props.value} placeholder={props.placeholder} spellcheck={false} autocomplete="off" aria-invalid={props.error ? 'true' : undefined} aria-describedby={`${id}-preview`} onInput={(e) => props.onInput(e.currentTarget.value)} />
      <div id={`${id}-preview`} class="selector-preview" aria-live="polite">
        <Show when={props.error}>
          <p class="field-error">{props.error}</p>
        </Show>
        <Switch>
          <Match when={preview().state === 'idle'}>
            <p class="hint">{props.emptyMeans ? `Empty: ${props.emptyMeans}.` : ''} {props.hint ?? 'e.g. os=linux,env=prod | group:canary'}</p>
          </Match>
          <Match when={preview().state === 'templated'}>
            <p class="hint">Uses parameters: resolved when the job runs.</p>
          </Match>
          <Match when={preview().state === 'loading'}>
            <p class="hint" aria-busy="true">
              Resolving…
            </p>
          </Match>
          <Match when={preview().state === 'error' && preview()}>
            {(p) => <p class="field-error">{(p() as { message: string }).message}</p>}
          </Match>
          <Match when={preview().state === 'ok' && (preview() as { result: Resolved }).result}>
            {(r) => <ResolvedTargets result={r()} />}
          </Match>
        </Switch>
      </div>
    </div>
  )
}

function ResolvedTargets(props: { result: Resolved }) {
  return (
    <div class="resolved">
      <p class="resolved-count">
        <strong>{props.result.count}</strong> {props.result.count === 1 ? 'target matches' : 'targets match'} now
      </p>
      <Show when={props.result.targets.length}>
        <ul class="resolved-list">
          <For each={props.result.targets}>
            {(t) => (
              <li>
                <span class="mono">{t.name}</span>
                <span class="hint"> {t.address}</span>
              </li>
            )}
          </For>
          <Show when={props.result.count > props.result.targets.length}>
            <li class="hint">and {props.result.count - props.result.targets.length} more</li>
          </Show>
        </ul>
      </Show>
    </div>
  )
}

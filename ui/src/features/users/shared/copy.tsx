import { createSignal, Show } from 'solid-js'

/**
 * Copies text to the clipboard. The button keeps its name (stable for assistive technology and
 * tests); the outcome is announced next to it. Where the clipboard is refused, it says how else.
 */
export function CopyButton(props: { text: string; label: string; class?: string }) {
  const [state, setState] = createSignal<'idle' | 'copied' | 'failed'>('idle')
  let timer: ReturnType<typeof setTimeout> | undefined
  const copy = async () => {
    clearTimeout(timer)
    try {
      await navigator.clipboard.writeText(props.text)
      setState('copied')
    } catch {
      setState('failed')
    }
    timer = setTimeout(() => setState('idle'), 4000)
  }
  return (
    <span class="copy">
      <button type="button" class={`button small ${props.class ?? ''}`} onClick={() => void copy()}>
        {props.label}
      </button>
      <span class="copy-status hint" role="status">
        <Show when={state() !== 'idle'}>{state() === 'copied' ? 'Copied to the clipboard' : 'The browser refused the clipboard: select the text and copy it'}</Show>
      </span>
    </span>
  )
}

/** A secret shown once: read-only, selected on focus, with a copy button. */
export function SecretValue(props: { value: string; label: string; copyLabel: string; id?: string }) {
  return (
    <div class="secret-value">
      <label for={props.id ?? 'secret-value'}>{props.label}</label>
      <div class="secret-row">
        <input id={props.id ?? 'secret-value'} class="mono" readonly value={props.value} onFocus={(e) => e.currentTarget.select()} spellcheck={false} autocomplete="off" />
        <CopyButton text={props.value} label={props.copyLabel} />
      </div>
    </div>
  )
}

import { createSignal, onCleanup, Show } from 'solid-js'

const SAID = {
  copied: 'Copied to the clipboard',
  selected: 'Selected: press Ctrl+C (⌘C) to copy',
  refused: 'The browser refused the clipboard: select the text and copy it',
}

/**
 * Copies text to the clipboard. The button keeps its name (stable for assistive technology and
 * tests); the outcome is announced next to it. Where the clipboard is refused (an http page, a
 * denied permission), `selectOnRefusal` names the element to select instead, for Ctrl+C.
 */
export function CopyButton(props: { text: string; label: string; 'aria-label'?: string; selectOnRefusal?: () => Node | undefined }) {
  const [said, setSaid] = createSignal<keyof typeof SAID | null>(null)
  let timer: ReturnType<typeof setTimeout> | undefined
  onCleanup(() => clearTimeout(timer))
  const copy = async () => {
    clearTimeout(timer)
    try {
      await navigator.clipboard.writeText(props.text)
      setSaid('copied')
    } catch {
      const node = props.selectOnRefusal?.()
      if (node) window.getSelection()?.selectAllChildren(node)
      setSaid(node ? 'selected' : 'refused')
    }
    timer = setTimeout(() => setSaid(null), 4000)
  }
  return (
    <span class="copy">
      <button type="button" class="button small" aria-label={props['aria-label']} onClick={() => void copy()}>
        {props.label}
      </button>
      <span class="copy-status hint" role="status">
        <Show when={said()}>{(s) => SAID[s()]}</Show>
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

import { Show } from 'solid-js'
import { ApiError } from '../api.ts'

interface Props {
  title: string
  error: unknown
  onRetry?: () => void
}

/** The one way a failure is shown: what failed, the API code, the message and the request id. */
export function ErrorPanel(props: Props) {
  const err = () => (props.error instanceof Error ? props.error : new Error(String(props.error)))
  const api = () => (props.error instanceof ApiError ? props.error : undefined)
  return (
    <div class="error-panel" role="alert">
      <div class="error-title">{props.title}</div>
      <p class="error-message">
        <Show when={api()}>{(e) => <code class="error-code">{e().code}</code>}</Show>
        {err().message}
      </p>
      <Show when={api()?.requestId}>{(id) => <p class="error-meta">Request id {id()}</p>}</Show>
      <Show when={props.onRetry}>
        {(retry) => (
          <button type="button" class="button" onClick={() => retry()()}>
            Try again
          </button>
        )}
      </Show>
    </div>
  )
}

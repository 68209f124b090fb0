import { useNavigate } from '@solidjs/router'
import { createSignal, onCleanup, Show } from 'solid-js'
import { api, unwrap } from '../../api.ts'
import { ErrorPanel } from '../../components/error-panel.tsx'
import { can } from '../../session.ts'
import { canRetry, isActive, type RunStatus } from './status.ts'

interface Props {
  runId: string
  status: RunStatus
  /** After a cancel was accepted: read the run again. */
  onCancelled: () => void
}

/** Cancel (active runs) and Retry failed (runs that ended with failures), for operators and admins. */
export function RunActions(props: Props) {
  const navigate = useNavigate()
  const [confirming, setConfirming] = createSignal(false)
  const [pending, setPending] = createSignal<'cancel' | 'retry' | null>(null)
  const [error, setError] = createSignal<{ what: string; err: unknown } | null>(null)
  let cancelButton: HTMLButtonElement | undefined
  let confirmButton: HTMLButtonElement | undefined

  const closeConfirm = () => {
    setConfirming(false)
    queueMicrotask(() => cancelButton?.focus())
  }
  const onKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape' && confirming()) closeConfirm()
  }
  document.addEventListener('keydown', onKey)
  onCleanup(() => document.removeEventListener('keydown', onKey))

  const cancel = async () => {
    setPending('cancel')
    setError(null)
    try {
      await unwrap(api.runs[':id'].cancel.$post({ param: { id: props.runId } }), 'POST /runs/:id/cancel')
      setConfirming(false)
      props.onCancelled()
    } catch (err) {
      setError({ what: 'Could not cancel the run', err })
    } finally {
      setPending(null)
    }
  }
  const retry = async () => {
    setPending('retry')
    setError(null)
    try {
      const res = await unwrap(api.runs[':id'].retry.$post({ param: { id: props.runId } }), 'POST /runs/:id/retry')
      navigate(`/runs/${res.run_id}`)
    } catch (err) {
      setError({ what: 'Could not retry the run', err })
    } finally {
      setPending(null)
    }
  }

  return (
    <div class="run-actions">
      <Show when={can('operator') && isActive(props.status)}>
        <Show
          when={confirming()}
          fallback={
            <button
              ref={cancelButton}
              type="button"
              class="button danger"
              onClick={() => {
                setConfirming(true)
                queueMicrotask(() => confirmButton?.focus())
              }}
            >
              Cancel run
            </button>
          }
        >
          <div class="confirm" role="group" aria-label="Confirm cancel">
            <span>Stop every step of this run?</span>
            <button ref={confirmButton} type="button" class="button danger" disabled={pending() === 'cancel'} onClick={() => void cancel()}>
              {pending() === 'cancel' ? 'Cancelling…' : 'Yes, cancel run'}
            </button>
            <button type="button" class="button" onClick={closeConfirm}>
              Keep running
            </button>
          </div>
        </Show>
      </Show>
      <Show when={can('operator') && canRetry(props.status)}>
        <button type="button" class="button primary" disabled={pending() === 'retry'} onClick={() => void retry()}>
          {pending() === 'retry' ? 'Starting retry…' : 'Retry failed'}
        </button>
      </Show>
      <Show when={error()}>{(e) => <ErrorPanel title={e().what} error={e().err} />}</Show>
    </div>
  )
}

import { createSignal } from 'solid-js'

/**
 * Pending and error state around one async action (save, delete, test): a call while one is under
 * way is ignored, a failure is kept for the view to show, and the action's value is handed back.
 */
export function createAction<A extends unknown[], T>(action: (...args: A) => Promise<T>) {
  const [pending, setPending] = createSignal(false)
  const [error, setError] = createSignal<unknown>(null)
  const run = async (...args: A): Promise<T | undefined> => {
    if (pending()) return undefined
    setPending(true)
    setError(null)
    try {
      return await action(...args)
    } catch (err) {
      setError(err)
      return undefined
    } finally {
      setPending(false)
    }
  }
  return { run, pending, error, clear: () => setError(null) }
}

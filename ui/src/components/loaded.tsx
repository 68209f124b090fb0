import { Match, Switch, type JSX, type Resource } from 'solid-js'
import { ErrorPanel } from './error-panel.tsx'

/** Error first (reading a failed resource throws), then data, then a loading placeholder. */
export function Loaded<T>(props: { resource: Resource<T>; what: string; onRetry: () => void; children: (value: T) => JSX.Element }) {
  return (
    <Switch fallback={<div class="card card-loading" aria-busy="true">Loading {props.what}…</div>}>
      <Match when={props.resource.error as unknown}>
        {(err) => <ErrorPanel title={`Could not load ${props.what}`} error={err()} onRetry={props.onRetry} />}
      </Match>
      {/* keyed: a refetched value renders again (an unkeyed child would keep the first value) */}
      <Match when={props.resource.latest} keyed>
        {(value) => props.children(value)}
      </Match>
    </Switch>
  )
}

/** What an empty list says, and what to do about it. */
export function EmptyState(props: { title: string; children?: JSX.Element }) {
  return (
    <div class="empty-state">
      <p class="empty-title">{props.title}</p>
      {props.children}
    </div>
  )
}

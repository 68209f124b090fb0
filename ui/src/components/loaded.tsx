import { createResource, Match, Show, Switch, type Accessor, type JSX, type Resource } from 'solid-js'
import { ErrorPanel } from './error-panel.tsx'

interface LoadedProps<T> {
  resource: Resource<T>
  what: string
  onRetry: () => void
  /** Shown above the error and the loading card: the page's heading, which the loaded view draws itself. */
  header?: JSX.Element
}

/**
 * Error first (reading a failed resource throws), then data, then a loading placeholder. By default
 * a new value (a refetch) renders the view again; with `keyed={false}` the view stays and follows
 * the value through an accessor (a form keeps what is typed across a refetch or a mutate).
 */
export function Loaded<T>(props: LoadedProps<T> & { keyed?: true; children: (value: T) => JSX.Element }): JSX.Element
export function Loaded<T>(props: LoadedProps<T> & { keyed: false; children: (value: Accessor<NonNullable<T>>) => JSX.Element }): JSX.Element
export function Loaded<T>(props: LoadedProps<T> & { keyed?: boolean; children: ((value: T) => JSX.Element) | ((value: Accessor<NonNullable<T>>) => JSX.Element) }) {
  const view = (value: T | Accessor<NonNullable<T>>) => (props.children as (v: typeof value) => JSX.Element)(value)
  return (
    <Switch
      fallback={
        <>
          {props.header}
          <div class="card card-loading" aria-busy="true">
            Loading {props.what}…
          </div>
        </>
      }
    >
      <Match when={props.resource.error as unknown}>
        {(err) => (
          <>
            {props.header}
            <ErrorPanel title={`Could not load ${props.what}`} error={err()} onRetry={props.onRetry} />
          </>
        )}
      </Match>
      <Match when={props.keyed === false && props.resource.latest}>{(value) => view(value as Accessor<NonNullable<T>>)}</Match>
      <Match when={props.keyed !== false && props.resource.latest} keyed>
        {(value) => view(value as T)}
      </Match>
    </Switch>
  )
}

/**
 * One record's page: without an id the `fallback` (the form for a new one); with one, the record
 * loaded and shown unkeyed, so saving it (`update`) keeps the view. Another id is another page.
 */
export function LoadById<T>(props: {
  id: string | undefined
  fetch: (id: string) => Promise<T>
  what: string
  header: JSX.Element
  fallback: JSX.Element
  children: (value: Accessor<NonNullable<T>>, update: (value: T) => void) => JSX.Element
}) {
  return (
    <Show when={props.id} keyed fallback={props.fallback}>
      {(id) => {
        const [value, { refetch, mutate }] = createResource(() => props.fetch(id))
        return (
          <Loaded resource={value} what={props.what} onRetry={() => void refetch()} header={props.header} keyed={false}>
            {(v) => props.children(v, (next) => mutate(() => next))}
          </Loaded>
        )
      }}
    </Show>
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

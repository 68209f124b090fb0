import type { RouteDefinition } from '@solidjs/router'
import { lazy } from 'solid-js'

const History = lazy(() => import('./history-page.tsx').then((m) => ({ default: m.HistoryPage })))
const Rules = lazy(() => import('./rules-page.tsx').then((m) => ({ default: m.RulesPage })))
const RuleForm = lazy(() => import('./rule-form-page.tsx').then((m) => ({ default: m.RuleFormPage })))
const Channels = lazy(() => import('./channels-page.tsx').then((m) => ({ default: m.ChannelsPage })))
const ChannelForm = lazy(() => import('./channel-form-page.tsx').then((m) => ({ default: m.ChannelFormPage })))
const Preferences = lazy(() => import('./preferences-page.tsx').then((m) => ({ default: m.PreferencesPage })))

export const notificationsRoutes: RouteDefinition[] = [
  { path: '/notifications', component: History },
  { path: '/notifications/rules', component: Rules },
  { path: '/notifications/rules/new', component: RuleForm },
  { path: '/notifications/rules/:id', component: RuleForm },
  { path: '/notifications/channels', component: Channels },
  { path: '/notifications/channels/new', component: ChannelForm },
  { path: '/notifications/channels/:id', component: ChannelForm },
  { path: '/notifications/preferences', component: Preferences },
]

import { SubNav } from '../../components/sub-nav.tsx'
import { can } from '../../session.ts'

/** Delivery history | Rules | Channels (admins) | My preferences. */
export function NotificationsNav() {
  return (
    <SubNav
      label="Notifications sections"
      items={[
        { href: '/notifications', label: 'Delivery history', end: true },
        { href: '/notifications/rules', label: 'Rules' },
        ...(can('admin') ? [{ href: '/notifications/channels', label: 'Channels' }] : []),
        { href: '/notifications/preferences', label: 'My preferences' },
      ]}
    />
  )
}

/** The wire protocol version this build speaks. Bump minor for additive changes, major for breaking ones. */
export const PROTOCOL_VERSION = { major: 1, minor: 0 } as const

export interface ProtocolVersionLike {
  major: number
  minor: number
}

/** Controller and agent may differ by one minor version of the same major. */
export function isCompatibleProtocol(a: ProtocolVersionLike, b: ProtocolVersionLike): boolean {
  return a.major === b.major && Math.abs(a.minor - b.minor) <= 1
}

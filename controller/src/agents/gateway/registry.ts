import type { AgentSession } from './session.ts'

/** The agent sessions this controller process holds, one per agent. */
export class SessionRegistry {
  private readonly sessions = new Map<string, AgentSession>()

  get(agentId: string): AgentSession | undefined {
    return this.sessions.get(agentId)
  }

  get size(): number {
    return this.sessions.size
  }

  all(): IterableIterator<AgentSession> {
    return this.sessions.values()
  }

  /** Makes `session` the agent's live session; returns the older one it replaces, if any. */
  attach(session: AgentSession): AgentSession | undefined {
    const previous = this.sessions.get(session.agentId)
    this.sessions.set(session.agentId, session)
    return previous === session ? undefined : previous
  }

  /** Forgets `session` if it is still the agent's live one; false when a newer session replaced it. */
  detach(session: AgentSession): boolean {
    if (this.sessions.get(session.agentId) !== session) return false
    this.sessions.delete(session.agentId)
    return true
  }
}

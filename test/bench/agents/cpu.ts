// CPU time of the three parties of the agents bench, from /proc: the controller (this process),
// the Postgres server (every process named postgres) and the simulated-agent workers.
import { readdirSync, readFileSync } from 'node:fs'

const TICK_S = 0.01 // USER_HZ: /proc reports CPU time in 1/100 s on Linux

function cpuSecondsOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) * TICK_S // utime + stime
  } catch {
    return undefined // gone
  }
}

function postgresPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'postgres'
      } catch {
        return false
      }
    })
}

type Snapshot = { controller: number; postgres: Map<number, number>; agents: Map<number, number> }

function snapshot(agentPids: number[]): Snapshot {
  const read = (pids: number[]) => new Map(pids.map((pid) => [pid, cpuSecondsOf(pid) ?? 0]))
  const usage = process.cpuUsage()
  return { controller: (usage.user + usage.system) / 1e6, postgres: read(postgresPids()), agents: read(agentPids) }
}

export interface CpuSpent {
  controller: number
  postgres: number
  agents: number
}

/** Runs `fn` and reports the CPU seconds each party spent meanwhile (a Postgres backend started meanwhile counts whole). */
export async function measureCpu<T>(agentPids: number[], fn: () => Promise<T>): Promise<{ result: T; cpu: CpuSpent }> {
  const before = snapshot(agentPids)
  const result = await fn()
  const after = snapshot(agentPids)
  const delta = (a: Map<number, number>, b: Map<number, number>) => [...a].reduce((sum, [pid, s]) => sum + s - (b.get(pid) ?? 0), 0)
  return { result, cpu: { controller: after.controller - before.controller, postgres: delta(after.postgres, before.postgres), agents: delta(after.agents, before.agents) } }
}

export const formatCpu = (cpu: CpuSpent) => `${cpu.controller.toFixed(1)} / ${cpu.postgres.toFixed(1)} / ${cpu.agents.toFixed(1)}`

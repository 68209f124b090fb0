// `npm run bench [-- NAME ...] [--record]`: runs the named benchmarks (all when none is named).
import { agentPackageBench } from './agent-package.ts'
import { agentsBench } from './agents.ts'
import { apiBench } from './api.ts'
import { fanoutBench } from './fanout.ts'
import { outputBench } from './output.ts'
import { runsBench } from './runs.ts'
import { schedulerBench } from './scheduler.ts'
import { selectorsBench } from './selectors.ts'
import { sshFanoutBench } from './ssh-fanout.ts'
import { startupBench } from './startup.ts'

const BENCHES: Record<string, (args: string[]) => Promise<void>> = {
  startup: startupBench,
  selectors: selectorsBench,
  agents: agentsBench,
  runs: runsBench,
  fanout: fanoutBench,
  'ssh-fanout': sshFanoutBench,
  scheduler: schedulerBench,
  'agent-package': agentPackageBench,
  output: outputBench,
  api: apiBench,
}

const args = process.argv.slice(2)
const named = [...new Set(args.filter((a) => a in BENCHES))] // `agents --agents N` names it once
for (const name of named.length ? named : Object.keys(BENCHES)) {
  console.log(`\n## ${name}`)
  await BENCHES[name]!(args)
}
process.exit(0)

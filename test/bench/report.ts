import { execSync } from 'node:child_process'
import { appendFileSync, existsSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'

export const BENCHMARKS_FILE = path.resolve(import.meta.dirname, '../../BENCHMARKS.md')

export function machine(): string {
  const cpu = os.cpus()[0]?.model.trim() ?? 'unknown CPU'
  return `${os.cpus().length} × ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`
}

export function commit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { encoding: 'utf8' }).trim()
  } catch {
    return 'unknown'
  }
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Renders a Markdown table; benches print it and, with --record, append it to BENCHMARKS.md. */
export function table(headers: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n')
}

export function record(title: string, body: string, notes = ''): void {
  if (!existsSync(BENCHMARKS_FILE)) writeFileSync(BENCHMARKS_FILE, '# Benchmarks\n\nFigures appended by `npm run bench -- --record`.\n')
  const date = new Date().toISOString().slice(0, 10)
  appendFileSync(BENCHMARKS_FILE, `\n## ${title} — ${date}, commit ${commit()}\n\nMachine: ${machine()}\n\n${body}\n${notes ? `\n${notes}\n` : ''}`)
}

import { randomUUID } from 'node:crypto'
import { XMLParser } from 'fast-xml-parser'
import { WinrmError, WsmanFault } from './errors.ts'

/*
 * WS-Management for Windows Remote Shell (MS-WSMV 3.1.4): the request envelopes, built as strings
 * with every value escaped, and the parsing of answers. Windows prefixes elements s:/rsp:/w:, OMI
 * and others use other prefixes, so answers are read with namespace prefixes removed.
 */

const NS = {
  s: 'http://www.w3.org/2003/05/soap-envelope',
  a: 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
  w: 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
  p: 'http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd',
  rsp: 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
}
const RESOURCE_CMD = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd'
const ACTION = {
  create: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create',
  delete: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete',
  command: `${NS.rsp}/Command`,
  send: `${NS.rsp}/Send`,
  receive: `${NS.rsp}/Receive`,
  signal: `${NS.rsp}/Signal`,
}
export const SIGNAL = {
  terminate: `${NS.rsp}/signal/terminate`,
  ctrl_c: `${NS.rsp}/signal/ctrl_c`,
} as const

/** WSManFault code of an operation timeout: on Receive it means "no output yet, poll again". */
export const WSMAN_TIMED_OUT = 2150858793
/** Windows' default MaxEnvelopeSizekb is 500 (150 on 2008 R2); requests stay under 150 KiB. */
export const MAX_ENVELOPE_BYTES = 153_600

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!)
}

export interface Request {
  messageId: string
  xml: string
}

interface HeaderOpts {
  to: string
  action: string
  shellId?: string
  options?: Record<string, string>
  operationTimeoutSec?: number
}

function envelope(h: HeaderOpts, body: string): Request {
  const messageId = `uuid:${randomUUID().toUpperCase()}`
  const selector = h.shellId ? `<w:SelectorSet><w:Selector Name="ShellId">${xmlEscape(h.shellId)}</w:Selector></w:SelectorSet>` : ''
  const options = h.options
    ? `<w:OptionSet>${Object.entries(h.options)
        .map(([name, value]) => `<w:Option Name="${xmlEscape(name)}">${xmlEscape(value)}</w:Option>`)
        .join('')}</w:OptionSet>`
    : ''
  const xml =
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<s:Envelope xmlns:s="${NS.s}" xmlns:a="${NS.a}" xmlns:w="${NS.w}" xmlns:p="${NS.p}" xmlns:rsp="${NS.rsp}">` +
    `<s:Header>` +
    `<a:To>${xmlEscape(h.to)}</a:To>` +
    `<a:ReplyTo><a:Address s:mustUnderstand="true">http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>` +
    `<w:ResourceURI s:mustUnderstand="true">${RESOURCE_CMD}</w:ResourceURI>` +
    `<a:Action s:mustUnderstand="true">${h.action}</a:Action>` +
    `<w:MaxEnvelopeSize s:mustUnderstand="true">${MAX_ENVELOPE_BYTES}</w:MaxEnvelopeSize>` +
    `<a:MessageID>${messageId}</a:MessageID>` +
    `<w:Locale xml:lang="en-US" s:mustUnderstand="false"/>` +
    `<p:DataLocale xml:lang="en-US" s:mustUnderstand="false"/>` +
    `<w:OperationTimeout>PT${h.operationTimeoutSec ?? 60}.000S</w:OperationTimeout>` +
    selector +
    options +
    `</s:Header><s:Body>${body}</s:Body></s:Envelope>`
  return { messageId, xml }
}

export function createShellRequest(to: string, o: { idleTimeoutSec?: number; codepage?: number } = {}): Request {
  const idle = o.idleTimeoutSec ? `<rsp:IdleTimeOut>PT${o.idleTimeoutSec}.000S</rsp:IdleTimeOut>` : ''
  return envelope(
    { to, action: ACTION.create, options: { WINRS_NOPROFILE: 'TRUE', WINRS_CODEPAGE: String(o.codepage ?? 65001) } },
    `<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams>${idle}</rsp:Shell>`,
  )
}

/** `command` is a whole command line; `skipCmdShell` runs it without cmd.exe /c (no 8 KiB limit from cmd). */
export function commandRequest(to: string, shellId: string, command: string, o: { skipCmdShell: boolean }): Request {
  return envelope(
    { to, action: ACTION.command, shellId, options: { WINRS_CONSOLEMODE_STDIN: 'TRUE', WINRS_SKIP_CMD_SHELL: o.skipCmdShell ? 'TRUE' : 'FALSE' } },
    `<rsp:CommandLine><rsp:Command>${xmlEscape(command)}</rsp:Command></rsp:CommandLine>`,
  )
}

export function sendRequest(to: string, shellId: string, commandId: string, data: Buffer, end: boolean): Request {
  return envelope(
    { to, action: ACTION.send, shellId },
    `<rsp:Send><rsp:Stream Name="stdin" CommandId="${xmlEscape(commandId)}"${end ? ' End="true"' : ''}>${data.toString('base64')}</rsp:Stream></rsp:Send>`,
  )
}

export function receiveRequest(to: string, shellId: string, commandId: string, operationTimeoutSec: number): Request {
  return envelope(
    { to, action: ACTION.receive, shellId, operationTimeoutSec, options: { WSMAN_CMDSHELL_OPTION_KEEPALIVE: 'TRUE' } },
    `<rsp:Receive><rsp:DesiredStream CommandId="${xmlEscape(commandId)}">stdout stderr</rsp:DesiredStream></rsp:Receive>`,
  )
}

export function signalRequest(to: string, shellId: string, commandId: string, code: keyof typeof SIGNAL): Request {
  return envelope({ to, action: ACTION.signal, shellId }, `<rsp:Signal CommandId="${xmlEscape(commandId)}"><rsp:Code>${SIGNAL[code]}</rsp:Code></rsp:Signal>`)
}

export function deleteShellRequest(to: string, shellId: string): Request {
  return envelope({ to, action: ACTION.delete, shellId }, '')
}

// ---- answers ----

const parser = new XMLParser({
  removeNSPrefix: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@',
  parseTagValue: false,
  parseAttributeValue: false,
  htmlEntities: true,
  isArray: (name) => name === 'Stream' || name === 'Selector' || name === 'Text',
})

type Node = Record<string, unknown>

const obj = (v: unknown): Node | undefined => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : undefined)
const at = (v: unknown, ...path: string[]): unknown => path.reduce<unknown>((cur, key) => obj(cur)?.[key], v)

/** The text inside a node (a string, or `#text` beside attributes), concatenating nested text. */
export function textOf(v: unknown): string {
  if (v === undefined || v === null) return ''
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v)
  if (Array.isArray(v)) return v.map(textOf).join(' ')
  const o = v as Node
  return Object.entries(o)
    .filter(([k]) => !k.startsWith('@'))
    .map(([, val]) => textOf(val))
    .filter((s) => s.length > 0)
    .join(' ')
}

/** The parsed Body of an answer; a SOAP Fault becomes a WsmanFault, anything unreadable a protocol error. */
export function parseBody(xml: string, what: string): Node {
  let doc: unknown
  try {
    doc = parser.parse(xml, true)
  } catch (err) {
    throw new WinrmError('protocol', `unreadable answer to ${what}: ${(err as Error).message.split('\n', 1)[0]}`, { cause: err })
  }
  const body = obj(at(doc, 'Envelope', 'Body'))
  if (!body) {
    // Empty Body elements parse as ''.
    if (at(doc, 'Envelope') !== undefined && obj(at(doc, 'Envelope'))?.['Body'] !== undefined) return {}
    throw new WinrmError('protocol', `the answer to ${what} is not a SOAP envelope`)
  }
  const fault = obj(body['Fault'])
  if (fault) throw faultOf(fault)
  return body
}

function faultOf(fault: Node): WsmanFault {
  const code = textOf(at(fault, 'Code', 'Value')) || undefined
  const subcode = textOf(at(fault, 'Code', 'Subcode', 'Value')) || undefined
  const wsman = obj(at(fault, 'Detail', 'WSManFault'))
  const rawCode = wsman?.['@Code']
  const wsmanCode = typeof rawCode === 'string' && /^\d+$/.test(rawCode) ? Number(rawCode) : undefined
  const reason = (textOf(at(fault, 'Reason', 'Text')) || textOf(wsman?.['Message']) || 'no reason given').replace(/\s+/g, ' ').trim()
  return new WsmanFault(code, subcode, reason, wsmanCode)
}

/** A Receive that found no output within its OperationTimeout (Windows code, or OMI's subcode). */
export function isTimedOut(err: unknown): boolean {
  return err instanceof WsmanFault && (err.wsmanCode === WSMAN_TIMED_OUT || (err.wsmanCode === undefined && /(^|:)TimedOut$/.test(err.subcode ?? '')))
}

export function parseShellId(xml: string): string {
  const body = parseBody(xml, 'Create shell')
  const direct = textOf(at(body, 'Shell', 'ShellId'))
  if (direct) return direct.trim()
  const selectors = at(body, 'ResourceCreated', 'ReferenceParameters', 'SelectorSet', 'Selector')
  for (const s of Array.isArray(selectors) ? selectors : []) {
    if (obj(s)?.['@Name'] === 'ShellId') return textOf(s).trim()
  }
  throw new WinrmError('protocol', 'the answer to Create shell has no ShellId')
}

export function parseCommandId(xml: string): string {
  const id = textOf(at(parseBody(xml, 'Command'), 'CommandResponse', 'CommandId')).trim()
  if (!id) throw new WinrmError('protocol', 'the answer to Command has no CommandId')
  return id
}

export interface Received {
  chunks: { stream: 'stdout' | 'stderr'; data: Buffer }[]
  done: boolean
  exitCode: number | null
}

export function parseReceive(xml: string): Received {
  const response = obj(parseBody(xml, 'Receive')['ReceiveResponse'])
  if (!response) throw new WinrmError('protocol', 'the answer to Receive has no ReceiveResponse')
  const chunks: Received['chunks'] = []
  for (const s of (response['Stream'] as unknown[] | undefined) ?? []) {
    const name = obj(s)?.['@Name']
    const text = textOf(s).replace(/\s+/g, '')
    if ((name === 'stdout' || name === 'stderr') && text.length > 0) chunks.push({ stream: name, data: Buffer.from(text, 'base64') })
  }
  const state = obj(response['CommandState'])
  const done = typeof state?.['@State'] === 'string' && /CommandState\/Done$/.test(state['@State'])
  const code = textOf(state?.['ExitCode']).trim()
  // Windows reports exit codes as unsigned 32-bit (0xC000013A as 3221225786): keep them as given.
  return { chunks, done, exitCode: done && /^-?\d+$/.test(code) ? Number(code) : null }
}

/** Checks an answer that carries nothing we need (Send, Signal, Delete) for faults. */
export function checkAnswer(xml: string, what: string): void {
  if (xml.trim().length > 0) parseBody(xml, what)
}

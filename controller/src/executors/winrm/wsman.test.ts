import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { WsmanFault } from './errors.ts'
import { commandRequest, createShellRequest, isTimedOut, parseBody, parseCommandId, parseReceive, parseShellId, receiveRequest, sendRequest, signalRequest, xmlEscape } from './wsman.ts'

// Answers in the shapes Windows (s:/rsp:/w: prefixes, pretty-printed or not) and OMI (other prefixes) send.
const WIN_CREATE = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:x="http://schemas.xmlsoap.org/ws/2004/09/transfer" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse</a:Action><a:MessageID>uuid:1</a:MessageID><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To><a:RelatesTo>uuid:2</a:RelatesTo></s:Header><s:Body><x:ResourceCreated><a:Address>http://win:5985/wsman</a:Address><a:ReferenceParameters><w:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">11111111-2222-3333-4444-555555555555</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated><rsp:Shell xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><rsp:ShellId>11111111-2222-3333-4444-555555555555</rsp:ShellId><rsp:ResourceUri>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</rsp:ResourceUri><rsp:Owner>WIN\\opsc</rsp:Owner></rsp:Shell></s:Body></s:Envelope>`

const OMI_CREATE = `<?xml version="1.0" encoding="utf-8"?>
<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
  <SOAP-ENV:Header>
    <wsa:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse</wsa:Action>
  </SOAP-ENV:Header>
  <SOAP-ENV:Body>
    <wxf:ResourceCreated xmlns:wxf="http://schemas.xmlsoap.org/ws/2004/09/transfer">
      <wsa:Address>http://omi:5985/wsman</wsa:Address>
      <wsa:ReferenceParameters>
        <wsman:SelectorSet>
          <wsman:Selector Name="ShellId">
            ABCDEF01-0000-0000-0000-000000000001
          </wsman:Selector>
        </wsman:SelectorSet>
      </wsa:ReferenceParameters>
    </wxf:ResourceCreated>
  </SOAP-ENV:Body>
</SOAP-ENV:Envelope>`

const WIN_RECEIVE = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header/><s:Body><rsp:ReceiveResponse><rsp:Stream Name="stdout" CommandId="C1">aGVsbG8NCg==</rsp:Stream><rsp:Stream Name="stderr" CommandId="C1">b29wcw==</rsp:Stream><rsp:Stream Name="stdout" CommandId="C1" End="true"></rsp:Stream><rsp:Stream Name="stderr" CommandId="C1" End="true"></rsp:Stream><rsp:CommandState CommandId="C1" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Done"><rsp:ExitCode>3</rsp:ExitCode></rsp:CommandState></rsp:ReceiveResponse></s:Body></s:Envelope>`

const OMI_RECEIVE_RUNNING = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:h="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
 <SOAP-ENV:Body>
  <h:ReceiveResponse>
   <h:Stream Name="stdout" CommandId="C2">
     aGk=
   </h:Stream>
   <h:CommandState CommandId="C2" State="http://schemas.microsoft.com/wbem/wsman/1/windows/shell/CommandState/Running"/>
  </h:ReceiveResponse>
 </SOAP-ENV:Body>
</SOAP-ENV:Envelope>`

const WIN_TIMED_OUT = `<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Header><a:Action>http://schemas.dmtf.org/wbem/wsman/1/wsman/fault</a:Action></s:Header><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:TimedOut</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150858793" Machine="win"><f:Message>The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

const OMI_TIMED_OUT = `<SOAP-ENV:Envelope xmlns:SOAP-ENV="http://www.w3.org/2003/05/soap-envelope" xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><SOAP-ENV:Body><SOAP-ENV:Fault><SOAP-ENV:Code><SOAP-ENV:Value>SOAP-ENV:Receiver</SOAP-ENV:Value><SOAP-ENV:Subcode><SOAP-ENV:Value>wsman:TimedOut</SOAP-ENV:Value></SOAP-ENV:Subcode></SOAP-ENV:Code><SOAP-ENV:Reason><SOAP-ENV:Text xml:lang="en-US">timed out</SOAP-ENV:Text></SOAP-ENV:Reason></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`

const WIN_ACCESS_DENIED = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:AccessDenied</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="">Access is denied. &amp; more &#x41;</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="5" Machine="win"><f:Message>Access is denied.</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

const PROVIDER_FAULT = `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason/><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150859173" Machine="win"><f:Message><f:ProviderFault provider="Shell cmd plugin">This user is allowed a maximum number of 30 concurrent shells, which has been exceeded.</f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>`

describe('WS-Man answers', () => {
  it('reads the ShellId from Windows and OMI Create answers', () => {
    assert.equal(parseShellId(WIN_CREATE), '11111111-2222-3333-4444-555555555555')
    assert.equal(parseShellId(OMI_CREATE), 'ABCDEF01-0000-0000-0000-000000000001')
  })

  it('reads output, end and exit code of a Receive', () => {
    const r = parseReceive(WIN_RECEIVE)
    assert.deepEqual(
      r.chunks.map((c) => [c.stream, c.data.toString()]),
      [
        ['stdout', 'hello\r\n'],
        ['stderr', 'oops'],
      ],
    )
    assert.equal(r.done, true)
    assert.equal(r.exitCode, 3)
    const running = parseReceive(OMI_RECEIVE_RUNNING)
    assert.equal(running.done, false)
    assert.equal(running.exitCode, null)
    assert.equal(running.chunks[0]?.data.toString(), 'hi')
  })

  it('reads the CommandId', () => {
    assert.equal(parseCommandId('<s:Envelope xmlns:s="x" xmlns:rsp="y"><s:Body><rsp:CommandResponse><rsp:CommandId>C-1</rsp:CommandId></rsp:CommandResponse></s:Body></s:Envelope>'), 'C-1')
  })

  it('recognises TimedOut by its Windows code and by OMI subcode', () => {
    for (const xml of [WIN_TIMED_OUT, OMI_TIMED_OUT]) {
      assert.throws(
        () => parseReceive(xml),
        (err) => isTimedOut(err),
      )
    }
  })

  it('turns other faults into WsmanFault with code, subcode and reason', () => {
    assert.throws(
      () => parseReceive(WIN_ACCESS_DENIED),
      (err) => err instanceof WsmanFault && err.wsmanCode === 5 && err.subcode === 'w:AccessDenied' && err.message === 'WinRM fault 5 (AccessDenied): Access is denied. & more A' && !isTimedOut(err),
    )
    assert.throws(
      () => parseShellId(PROVIDER_FAULT),
      (err) => err instanceof WsmanFault && err.wsmanCode === 2150859173 && /maximum number of 30 concurrent shells/.test(err.reason),
    )
  })

  it('calls unreadable XML and non-SOAP answers protocol errors', () => {
    assert.throws(() => parseBody('<html><body>Bad Request</body>', 'Create shell'), (err) => err instanceof Error && (err as { kind?: string }).kind === 'protocol')
    assert.throws(() => parseBody('<a><b></a>', 'Receive'), (err) => (err as { kind?: string }).kind === 'protocol')
  })
})

describe('WS-Man requests', () => {
  it('escapes values in envelopes', () => {
    assert.equal(xmlEscape(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;')
    const req = commandRequest('http://h:5985/wsman', 'S1', 'echo <hi> & "bye"', { skipCmdShell: false })
    assert.match(req.xml, /<rsp:Command>echo &lt;hi&gt; &amp; &quot;bye&quot;<\/rsp:Command>/)
    assert.match(req.xml, /<w:Selector Name="ShellId">S1<\/w:Selector>/)
    assert.match(req.xml, /WINRS_SKIP_CMD_SHELL">FALSE/)
    assert.match(req.messageId, /^uuid:[0-9A-F-]{36}$/)
  })

  it('builds well-formed Create, Send, Receive and Signal envelopes', () => {
    const to = 'https://[::1]:5986/wsman'
    for (const req of [createShellRequest(to, { idleTimeoutSec: 600 }), sendRequest(to, 'S', 'C', Buffer.from('data'), true), receiveRequest(to, 'S', 'C', 20), signalRequest(to, 'S', 'C', 'terminate')]) {
      const body = parseBody(req.xml, 'test')
      assert.ok(Object.keys(body).length > 0)
    }
    assert.match(sendRequest(to, 'S', 'C', Buffer.from('data'), true).xml, /<rsp:Stream Name="stdin" CommandId="C" End="true">ZGF0YQ==<\/rsp:Stream>/)
    assert.match(receiveRequest(to, 'S', 'C', 20).xml, /<w:OperationTimeout>PT20.000S<\/w:OperationTimeout>/)
    assert.match(signalRequest(to, 'S', 'C', 'terminate').xml, /signal\/terminate<\/rsp:Code>/)
  })
})

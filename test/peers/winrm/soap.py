"""SOAP 1.2 / WS-Management envelopes as Windows' WinRM service writes them, and request parsing.

Requests are parsed by namespace URI (any prefixes); replies use Windows' prefixes s:/a:/x:/w:/rsp:/p:.
"""
import re
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape, quoteattr

NS = {
    's': 'http://www.w3.org/2003/05/soap-envelope',
    'a': 'http://schemas.xmlsoap.org/ws/2004/08/addressing',
    'x': 'http://schemas.xmlsoap.org/ws/2004/09/transfer',
    'w': 'http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd',
    'rsp': 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell',
    'p': 'http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd',
    'f': 'http://schemas.microsoft.com/wbem/wsman/1/wsmanfault',
}
ANONYMOUS = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous'
SHELL = NS['rsp']
CMD_URI = 'http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd'

ACTION_CREATE = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Create'
ACTION_DELETE = 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete'
ACTION_COMMAND = SHELL + '/Command'
ACTION_SEND = SHELL + '/Send'
ACTION_RECEIVE = SHELL + '/Receive'
ACTION_SIGNAL = SHELL + '/Signal'
ACTION_FAULT = 'http://schemas.dmtf.org/wbem/wsman/1/wsman/fault'
ADDRESSING_FAULT = 'http://schemas.xmlsoap.org/ws/2004/08/addressing/fault'

SIGNAL_TERMINATE = SHELL + '/signal/terminate'
SIGNAL_CTRL_C = SHELL + '/signal/ctrl_c'
SIGNAL_CTRL_BREAK = SHELL + '/signal/ctrl_break'
STATE_RUNNING = SHELL + '/CommandState/Running'
STATE_DONE = SHELL + '/CommandState/Done'


def q(prefix, local):
    return '{%s}%s' % (NS[prefix], local)


class Request:
    """The parts of a WS-Man request envelope the shell plugin needs."""

    def __init__(self, raw):
        self.raw = raw
        self.root = ET.fromstring(raw)
        if self.root.tag != q('s', 'Envelope'):
            raise ValueError('not a SOAP 1.2 envelope: %s' % self.root.tag)
        header = self.root.find(q('s', 'Header'))
        self.header = header if header is not None else ET.Element('Header')
        body = self.root.find(q('s', 'Body'))
        self.body = body if body is not None else ET.Element('Body')
        self.action = self._text('a', 'Action')
        self.message_id = self._text('a', 'MessageID')
        self.resource_uri = self._text('w', 'ResourceURI')
        self.to = self._text('a', 'To')
        self.operation_timeout = parse_duration(self._text('w', 'OperationTimeout'))
        max_env = self._text('w', 'MaxEnvelopeSize')
        self.max_envelope_size = int(max_env) if max_env and max_env.isdigit() else None
        self.selectors = {}
        for sel in self.header.iter(q('w', 'Selector')):
            self.selectors[sel.get('Name')] = (sel.text or '').strip()
        self.options = {}
        for opt in self.header.iter(q('w', 'Option')):
            self.options[opt.get('Name')] = (opt.text or '').strip()

    def _text(self, prefix, local):
        el = self.header.find(q(prefix, local))
        return el.text.strip() if el is not None and el.text else None

    @property
    def shell_id(self):
        return self.selectors.get('ShellId')


def parse_duration(text):
    """xs:duration such as PT20S, PT1.5S, PT1M, P0DT0H0M60S → seconds (None when absent or unparsable)."""
    if not text:
        return None
    m = re.fullmatch(r'P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?', text.strip())
    if not m:
        return None
    d, h, mi, s = m.groups()
    return int(d or 0) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)


def new_guid():
    return str(uuid.uuid4()).upper()


def envelope(action, relates_to, body, extra_ns=''):
    """A response envelope with Windows' header layout (Action, MessageID, To, RelatesTo)."""
    relates = '<a:RelatesTo>%s</a:RelatesTo>' % escape(relates_to) if relates_to else ''
    return (
        '<s:Envelope xml:lang="en-US" xmlns:s="%(s)s" xmlns:a="%(a)s" xmlns:x="%(x)s" xmlns:w="%(w)s" '
        'xmlns:rsp="%(rsp)s" xmlns:p="%(p)s"%(extra)s>'
        '<s:Header><a:Action>%(action)s</a:Action><a:MessageID>uuid:%(mid)s</a:MessageID>'
        '<a:To>%(anon)s</a:To>%(relates)s</s:Header><s:Body>%(body)s</s:Body></s:Envelope>'
    ) % dict(NS, extra=extra_ns, action=escape(action), mid=new_guid(), anon=ANONYMOUS, relates=relates, body=body)


class Fault(Exception):
    """A WS-Man fault: HTTP 500 with s:Fault and a wsmanfault:WSManFault detail, as Windows sends it."""

    def __init__(self, code, subcode, reason, wsman_code=None, detail_extra='', action=ACTION_FAULT):
        super().__init__(reason)
        self.code = code  # 's:Sender' | 's:Receiver'
        self.subcode = subcode  # 'w:TimedOut', 'w:InvalidSelectors', 'a:ActionNotSupported', ...
        self.reason = reason
        self.wsman_code = wsman_code
        self.detail_extra = detail_extra
        self.action = action

    def xml(self, relates_to, machine):
        detail = self.detail_extra
        if self.wsman_code is not None:
            detail += ('<f:WSManFault xmlns:f="%s" Code="%d" Machine=%s><f:Message>%s</f:Message></f:WSManFault>'
                       % (NS['f'], self.wsman_code, quoteattr(machine), escape(self.reason)))
        body = ('<s:Fault><s:Code><s:Value>%s</s:Value><s:Subcode><s:Value>%s</s:Value></s:Subcode></s:Code>'
                '<s:Reason><s:Text xml:lang="en-US">%s</s:Text></s:Reason>%s</s:Fault>'
                % (self.code, self.subcode, escape(self.reason), '<s:Detail>%s</s:Detail>' % detail if detail else ''))
        return envelope(self.action, relates_to, body,
                        extra_ns=' xmlns:e="http://schemas.xmlsoap.org/ws/2004/08/eventing" '
                                 'xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"')


# The faults below carry the codes and texts Windows uses (see README for where they come from).

def timed_out():
    return Fault('s:Receiver', 'w:TimedOut',
                 'The WS-Management service cannot complete the operation within the time specified in OperationTimeout.  ',
                 2150858793)


def shell_not_found(shell_id):
    return Fault('s:Sender', 'w:InvalidSelectors',
                 'The request for the Windows Remote Shell with ShellId %s failed because the shell was not found on the '
                 'server. Possible causes are: the specified ShellId is incorrect or the shell no longer exists on the '
                 'server. Provide the correct ShellId or create a new shell and retry the operation. ' % shell_id,
                 2150858843)


def command_not_found(command_id):
    return Fault('s:Sender', 'w:InvalidParameter',
                 'The request for the Windows Remote Shell failed because the command with CommandId %s was not found '
                 'on the server. ' % command_id,
                 2150858882)


def max_shells(limit):
    # Windows (2008 R2 .. 2022) answers MaxShellsPerUser with ERROR_WSMAN_QUOTA_MAX_SHELLS 0x803381A5.
    return Fault('s:Receiver', 'w:InternalError',
                 'The WS-Management service cannot process the request. This user is allowed a maximum number of %d '
                 'concurrent shells, which has been exceeded. Close existing shells or raise the quota for this user. '
                 % limit, 2150859173)


def encoding_limit(limit):
    return Fault('s:Sender', 'w:EncodingLimit',
                 'The WS-Management service cannot process the request because the request envelope size exceeds '
                 'the configured MaxEnvelopeSize quota of %d bytes. ' % limit,
                 2150859025,
                 detail_extra='<w:FaultDetail>http://schemas.dmtf.org/wbem/wsman/1/wsman/faultDetail/MaxEnvelopeSize</w:FaultDetail>')


def action_not_supported(action):
    return Fault('s:Sender', 'a:ActionNotSupported',
                 'The WS-Management service cannot process the request because the action %s is not supported. ' % action,
                 2150858753, action=ADDRESSING_FAULT)


def invalid_resource_uri(uri):
    return Fault('s:Sender', 'w:DestinationUnreachable',
                 'The WS-Management service cannot process the request. The resource URI (%s) was not found in the '
                 'WS-Management catalog. ' % uri,
                 2150858770)


def schema_violation(reason):
    return Fault('s:Sender', 'w:SchemaValidationError',
                 'The SOAP XML in the message does not match the corresponding XML schema definition. %s ' % reason,
                 2150858817)


def directory_invalid():
    return Fault('s:Receiver', 'w:InternalError', 'The directory name is invalid. ', 2147942667)

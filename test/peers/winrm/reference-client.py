#!/usr/bin/python3
"""Drives the WinRM peer with pywinrm (the reference client) for peer.test.ts; prints one JSON object.

usage: reference-client.py '<json>' with {op, endpoint, transport, username, password, ca?, ...}
ops: run_cmd {command, args}, run_ps {script}, stdin {command, args, chunks}, timeout_then_terminate {marker}, quota {count},
     unencrypted (NTLM over HTTP with message_encryption='never').
Result: {"ok": true, ...} or {"ok": false, "error": "<exception class>", "message": "..."}.
"""
import os
import sys

# ntlm-auth computes the NT hash with MD4, which OpenSSL 3 only has in its legacy provider. The config
# must be in place before anything loads OpenSSL, hence before the imports below.
_CNF = '/tmp/opsc-winrm-ref-openssl-%d.cnf' % os.getpid()
with open(_CNF, 'w') as _f:
    _f.write('openssl_conf = init\n[init]\nproviders = prov\n[prov]\ndefault = def\nlegacy = leg\n'
             '[def]\nactivate = 1\n[leg]\nactivate = 1\n')
os.environ['OPENSSL_CONF'] = _CNF

import base64  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402

import xmltodict  # noqa: E402
import winrm  # noqa: E402
from winrm.exceptions import WinRMError, WinRMOperationTimeoutError, WinRMTransportError  # noqa: E402
from winrm.protocol import Protocol  # noqa: E402

os.unlink(_CNF)
warnings.simplefilter('ignore')


def protocol(spec, **kwargs):
    opts = dict(transport=spec['transport'], username=spec['username'], password=spec['password'],
                server_cert_validation='validate')
    if spec.get('ca'):
        opts['ca_trust_path'] = spec['ca']
    opts.update(kwargs)
    return Protocol(spec['endpoint'], **opts)


def run(p, command, args=()):
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, command, args)
    out, err, code = p.get_command_output(shell_id, command_id)
    p.cleanup_command(shell_id, command_id)
    p.close_shell(shell_id)
    return out, err, code


def op_run_cmd(spec):
    out, err, code = run(protocol(spec), spec['command'], spec.get('args', []))
    return {'stdout': out.decode('utf-8', 'replace'), 'stderr': err.decode('utf-8', 'replace'), 'status_code': code}


def op_run_ps(spec):
    # Session.run_ps of pywinrm 0.3.0 calls _clean_error_msg with bytes and fails on Python 3 (fixed in
    # 0.4); this is the same sequence with the CLIXML decoding applied to text.
    encoded = base64.b64encode(spec['script'].encode('utf_16_le')).decode('ascii')
    out, err, code = run(protocol(spec), 'powershell -encodedcommand %s' % encoded)
    session = winrm.Session.__new__(winrm.Session)
    raw_err = err.decode('utf-8', 'replace')
    return {'stdout': out.decode('utf-8', 'replace'), 'stderr': session._clean_error_msg(raw_err) if raw_err else '',
            'raw_stderr': raw_err, 'status_code': code}


def receive_request(p, shell_id, command_id):
    req = {'env:Envelope': p._get_soap_header(
        resource_uri='http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd',
        action='http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Receive', shell_id=shell_id)}
    stream = req['env:Envelope'].setdefault('env:Body', {}).setdefault('rsp:Receive', {}).setdefault('rsp:DesiredStream', {})
    stream['@CommandId'] = command_id
    stream['#text'] = 'stdout stderr'
    return xmltodict.unparse(req)


def op_timeout_then_terminate(spec):
    p = protocol(spec, operation_timeout_sec=1, read_timeout_sec=10)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, 'sleep', [spec['marker']])
    result = {}
    # The raw answer to a Receive that outlives OperationTimeout PT1S ...
    try:
        p.transport.send_message(receive_request(p, shell_id, command_id))
        result['raw'] = 'no fault'
    except WinRMTransportError as err:
        result['raw_status'] = err.code
        body = err.response_text
        result['raw_fault'] = body.decode('utf-8') if isinstance(body, bytes) else body
    # ... and what pywinrm makes of it.
    try:
        p._raw_get_command_output(shell_id, command_id)
        result['pywinrm'] = 'no error'
    except WinRMOperationTimeoutError:
        result['pywinrm'] = 'WinRMOperationTimeoutError'
    p.cleanup_command(shell_id, command_id)  # Signal terminate
    result['terminated'] = True
    p.close_shell(shell_id)
    return result


def op_stdin(spec):
    # pywinrm 0.3.0 has no send_command_input (0.4 does): the same rsp:Send envelope, built here.
    p = protocol(spec)
    shell_id = p.open_shell()
    command_id = p.run_command(shell_id, spec['command'], spec.get('args', []))
    for i, chunk in enumerate(spec['chunks']):
        req = {'env:Envelope': p._get_soap_header(
            resource_uri='http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd',
            action='http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send', shell_id=shell_id)}
        stream = req['env:Envelope'].setdefault('env:Body', {}).setdefault('rsp:Send', {}).setdefault('rsp:Stream', {})
        stream['@Name'] = 'stdin'
        stream['@CommandId'] = command_id
        stream['#text'] = base64.b64encode(chunk.encode('utf-8')).decode('ascii')
        if i == len(spec['chunks']) - 1:
            stream['@End'] = 'true'
        p.send_message(xmltodict.unparse(req))
    out, err, code = p.get_command_output(shell_id, command_id)
    p.cleanup_command(shell_id, command_id)
    p.close_shell(shell_id)
    return {'stdout': out.decode('utf-8', 'replace'), 'stderr': err.decode('utf-8', 'replace'), 'status_code': code}


def op_quota(spec):
    p = protocol(spec)
    shells, result = [], {'opened': 0}
    try:
        for _ in range(spec['count']):
            shells.append(p.open_shell())
            result['opened'] = len(shells)
    except WinRMError as err:
        result['error'] = str(err)
    finally:
        for shell_id in shells:
            p.close_shell(shell_id)
    # A closed shell frees its slot.
    shell_id = p.open_shell()
    p.close_shell(shell_id)
    result['after_close'] = 'ok'
    return result


def op_unencrypted(spec):
    out, err, code = run(protocol(spec, message_encryption='never'), 'echo', ['plain'])
    return {'stdout': out.decode(), 'status_code': code}


OPS = {'run_cmd': op_run_cmd, 'run_ps': op_run_ps, 'stdin': op_stdin, 'timeout_then_terminate': op_timeout_then_terminate,
       'quota': op_quota, 'unencrypted': op_unencrypted}


def main():
    spec = json.loads(sys.argv[1])
    try:
        result = dict(ok=True, **OPS[spec['op']](spec))
    except Exception as err:  # reported to the test as data
        result = {'ok': False, 'error': type(err).__name__, 'message': str(err)}
    sys.stdout.write(json.dumps(result) + '\n')


if __name__ == '__main__':
    main()

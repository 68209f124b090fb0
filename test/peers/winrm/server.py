#!/usr/bin/python3
"""A WS-Management (WinRM) peer for tests: speaks to clients like Windows' WinRM service on the wire.

HTTP or HTTPS on 127.0.0.1, POST /wsman. Auth: Basic (HTTPS only unless --allow-unencrypted) and
Negotiate/NTLM through python3-gssapi + gss-ntlmssp (NTLM_USER_FILE lines `DOMAIN:user:password`).
On HTTP, NTLM-authenticated messages must be sealed (multipart/encrypted, MS-WSMV 2.2.9.1.1) unless
--allow-unencrypted. Prints `LISTENING <port>` on stdout once it accepts connections; logs to stderr.
See README.md.
"""
import argparse
import base64
import hashlib
import os
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True  # no __pycache__ in the repository
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import soap  # noqa: E402
from shells import ShellService  # noqa: E402

NTLM_OID = '1.3.6.1.4.1.311.2.2.10'
SPNEGO_OID = '1.3.6.1.5.5.2'
SOAP_TYPE = 'application/soap+xml;charset=UTF-8'
ENC_PROTOCOL = 'application/HTTP-SPNEGO-session-encrypted'
ENC_TYPE = 'multipart/encrypted;protocol="%s";boundary="Encrypted Boundary"' % ENC_PROTOCOL
BOUNDARY = b'--Encrypted Boundary'

gssapi = None  # imported in main() once NTLM_USER_FILE is set


def log(msg):
    sys.stderr.write('[winrm-peer %s] %s\n' % (time.strftime('%H:%M:%S'), msg))
    sys.stderr.flush()


def read_users(path):
    users = []
    with open(path, encoding='utf-8') as f:
        for line in f:
            line = line.rstrip('\r\n')
            if line and not line.startswith('#'):
                domain, user, password = line.split(':', 2)
                users.append((domain, user, password))
    return users


def split_user(name):
    """`DOMAIN\\user`, `user@domain` or `user` → (domain or '', user)."""
    if '\\' in name:
        d, u = name.split('\\', 1)
        return d, u
    if '@' in name:
        u, d = name.rsplit('@', 1)
        return d, u
    return '', name


def cert_hash(der):
    """RFC 5929 tls-server-end-point hash. The harness signs with SHA-256 (and MD5/SHA-1 map to SHA-256)."""
    sha384 = (b'\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0c', b'\x2a\x86\x48\xce\x3d\x04\x03\x03')
    sha512 = (b'\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0d', b'\x2a\x86\x48\xce\x3d\x04\x03\x04')
    tail = der  # the signature algorithm OID appears in tbsCertificate and after it; key OIDs differ
    algo = 'sha384' if any(o in tail for o in sha384) else 'sha512' if any(o in tail for o in sha512) else 'sha256'
    return hashlib.new(algo, der).digest()


class EncryptedFraming:
    """multipart/encrypted bodies with NTLM sealing, framed like pywinrm/Windows (MS-WSMV 2.2.9.1.1)."""

    @staticmethod
    def parse(body):
        m = re.search(rb'OriginalContent:\s*type=[^;\r\n]*(?:;[^;\r\n]*)*?;\s*Length=(\d+)', body, re.I)
        if not m:
            raise ValueError('no OriginalContent Length')
        length = int(m.group(1))
        m2 = re.search(rb'Content-Type:\s*application/octet-stream\r\n', body[m.end():], re.I)
        if not m2:
            raise ValueError('no application/octet-stream part')
        data = body[m.end() + m2.end():]
        sig_len = struct.unpack('<I', data[:4])[0]
        end = 4 + sig_len + length
        if len(data) < end or not data[end:].startswith(BOUNDARY):
            raise ValueError('encrypted part length does not match OriginalContent Length=%d' % length)
        return data[4:4 + sig_len], data[4 + sig_len:end], length

    @staticmethod
    def build(wrapped, length):
        # gss-ntlmssp's wrap output is the 16-byte signature followed by the sealed payload.
        return (BOUNDARY + b'\r\n\tContent-Type: ' + ENC_PROTOCOL.encode() + b'\r\n'
                b'\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=' + str(length).encode() + b'\r\n'
                + BOUNDARY + b'\r\n\tContent-Type: application/octet-stream\r\n'
                + struct.pack('<I', 16) + wrapped + BOUNDARY + b'--\r\n')


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'Microsoft-HTTPAPI/2.0'
    sys_version = ''

    # per connection: the NTLM context binds to the TCP connection, like http.sys does
    gss_ctx = None
    gss_user = None
    gss_scheme = None
    auth_reply = None

    def setup(self):
        if self.server.tls is not None:
            self.request.settimeout(30)
            self.request = self.server.tls.wrap_socket(self.request, server_side=True)
            self.request.settimeout(None)
        super().setup()

    def log_message(self, fmt, *args):
        pass  # one line per request is written by _log

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self._plain(405)

    do_PUT = do_DELETE = do_HEAD = do_GET

    def _read_body(self):
        if 'chunked' in (self.headers.get('Transfer-Encoding') or '').lower():
            body = b''
            while True:
                size = int(self.rfile.readline().split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline() not in (b'\r\n', b'\n', b''):
                        pass
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get('Content-Length') or 0))

    def _plain(self, status, headers=(), body=b'', content_type=None):
        self.send_response(status)
        if self.auth_reply and status != 401:
            self.send_header('WWW-Authenticate', self.auth_reply)
        self.auth_reply = None
        for k, v in headers:
            self.send_header(k, v)
        if content_type:
            self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _challenge(self, token_header=None):
        """401: either the bare offer of schemes or, mid-handshake, the NTLM challenge."""
        self.gss_ctx = None if token_header is None else self.gss_ctx
        headers = [('WWW-Authenticate', token_header)] if token_header else self._offers()
        self._plain(401, headers)

    def _offers(self):
        offers = [('WWW-Authenticate', 'Negotiate')]
        if self.server.tls is not None or self.server.allow_unencrypted:
            offers.append(('WWW-Authenticate', 'Basic realm="WSMAN"'))
        return offers

    def do_POST(self):
        started = time.monotonic()
        self.note = {}
        try:
            self._post()
        finally:
            self._log(started)

    def _log(self, started):
        n = self.note
        log('POST %s auth=%s user=%s enc=%s action=%s shell=%s -> %s %s(%d ms)' % (
            self.path, n.get('auth', '-'), n.get('user', '-'), n.get('enc', '-'),
            (n.get('action') or '-').rsplit('/', 1)[-1], n.get('shell', '-'), n.get('status', '-'),
            n.get('fault', '') + ' ' if n.get('fault') else '', (time.monotonic() - started) * 1000))

    def _post(self):
        body = self._read_body()
        if self.path.split('?')[0].lower() != '/wsman':
            self.note['status'] = 404
            return self._plain(404)
        user = self._authenticate()
        if user is None:
            return
        self.note['user'] = user
        ctype = (self.headers.get('Content-Type') or '').lower()
        if ctype.startswith('multipart/encrypted'):
            if self.gss_ctx is None or self.note['auth'] == 'basic':
                self.note['status'] = 400
                return self._plain(400)
            try:
                sig, sealed, length = EncryptedFraming.parse(body)
                res = self.gss_ctx.unwrap(sig + sealed)
                soap_bytes = res.message
                if len(soap_bytes) != length:
                    raise ValueError('length mismatch')
            except Exception as err:
                log('cannot unseal the message: %s' % err)
                self.note['status'] = 400
                return self._plain(400)
            self.note['enc'] = 'yes'
            return self._soap(soap_bytes, user, encrypt=True)
        self.note['enc'] = 'no'
        if not body:
            # pywinrm (and Windows clients) POST an empty body to finish authentication.
            self.note['status'] = 200
            return self._plain(200)
        if self.note['auth'] != 'basic' and self.server.tls is None and not self.server.allow_unencrypted:
            # AllowUnencrypted=false: Windows rejects plain SOAP on HTTP and drops the connection's auth.
            log('refused an unencrypted message on HTTP (AllowUnencrypted=false)')
            self.gss_ctx = None
            self.note['status'] = 401
            return self._challenge()
        if not ctype.startswith('application/soap+xml'):
            self.note['status'] = 415
            return self._plain(415)
        return self._soap(body, user, encrypt=False)

    def _authenticate(self):
        """The user name, or None after a 401 was sent."""
        header = self.headers.get('Authorization') or ''
        scheme, _, value = header.partition(' ')
        scheme = scheme.lower()
        if not header:
            if self.gss_ctx is not None and self.gss_ctx.complete:
                self.note['auth'] = self.gss_scheme
                return self.gss_user
            self.note.update(auth='none', status=401)
            self._challenge()
            return None
        if scheme == 'basic':
            self.note['auth'] = 'basic'
            return self._basic(value.strip())
        if scheme in ('negotiate', 'ntlm'):
            self.note['auth'] = scheme
            return self._ntlm(scheme, value.strip())
        self.note.update(auth=scheme, status=401)
        self._challenge()
        return None

    def _basic(self, value):
        if self.server.tls is None and not self.server.allow_unencrypted:
            self.note['status'] = 401
            self._challenge()
            return None
        try:
            name, _, password = base64.b64decode(value).decode('utf-8').partition(':')
        except Exception:
            name, password = '', None
        domain, user = split_user(name)
        for d, u, p in self.server.users:
            if u.lower() == user.lower() and (not domain or domain.lower() == d.lower()) and p == password:
                return u.lower()
        self.note.update(status=401, user=name)
        self._challenge()
        return None

    def _ntlm(self, scheme, value):
        try:
            token = base64.b64decode(value)
        except Exception:
            token = b''
        raw_ntlm = token.startswith(b'NTLMSSP\0')
        msg_type = struct.unpack('<I', token[8:12])[0] if raw_ntlm and len(token) >= 12 else None
        # A raw NTLMSSP NEGOTIATE or a SPNEGO NegTokenInit (0x60) starts a handshake; anything else continues one.
        first = msg_type == 1 or token[:1] == b'\x60'
        if first or self.gss_ctx is None or self.gss_ctx.complete:
            self.gss_ctx = self.server.new_context(spnego=not raw_ntlm)
            self.gss_user = None
        try:
            out = self.gss_ctx.step(token)
        except Exception as err:
            log('%s authentication failed: %s' % (scheme, str(err).splitlines()[0]))
            self.gss_ctx = None
            self.note['status'] = 401
            self._challenge()
            return None
        if not self.gss_ctx.complete:
            self.note['status'] = 401
            self._challenge('%s %s' % (self.headers.get('Authorization').split(' ', 1)[0],
                                       base64.b64encode(out).decode('ascii')))
            return None
        if out:
            # SPNEGO's final NegTokenResp (mechListMIC) rides on the successful response, as with IIS/http.sys.
            self.auth_reply = '%s %s' % (self.headers.get('Authorization').split(' ', 1)[0], base64.b64encode(out).decode('ascii'))
        # gss-ntlmssp's display name may end in a NUL
        domain, user = split_user(str(self.gss_ctx.initiator_name).rstrip('\x00').strip())
        self.gss_user = user.lower()
        self.gss_scheme = scheme
        return self.gss_user

    def _soap(self, soap_bytes, user, encrypt):
        endpoint = '%s://127.0.0.1:%d/wsman' % ('https' if self.server.tls else 'http', self.server.server_address[1])
        relates = None
        try:
            try:
                req = soap.Request(soap_bytes)
            except Exception as err:
                raise soap.schema_violation('The request could not be parsed: %s.' % err)
            relates = req.message_id
            self.note.update(action=req.action, shell=req.shell_id or '-')
            reply, shell_id = self.server.shells.handle(req, user, endpoint)
            self.note['shell'] = shell_id
            status = 200
        except soap.Fault as fault:
            reply = fault.xml(relates, self.server.machine)
            status = 500
            self.note['fault'] = fault.subcode
        self.note['status'] = status
        data = reply.encode('utf-8')
        if encrypt:
            wrapped = self.gss_ctx.wrap(data, True).message
            return self._plain(status, body=EncryptedFraming.build(wrapped, len(data)), content_type=ENC_TYPE)
        return self._plain(status, body=data, content_type=SOAP_TYPE)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, args):
        super().__init__(('127.0.0.1', args.port), Handler)
        self.allow_unencrypted = args.allow_unencrypted
        self.users = read_users(args.users)
        self.machine = socket.gethostname()
        self.shells = ShellService(args.max_shells, args.max_envelope_size, args.home, self.machine)
        self.tls = None
        self.channel_bindings = None
        self.ntlm = gssapi.OID.from_int_seq(NTLM_OID)
        self.creds = gssapi.Credentials(usage='accept', mechs=[self.ntlm])
        if args.https:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.cert, args.key)
            self.tls = ctx
            with open(args.cert, encoding='ascii') as f:
                der = ssl.PEM_cert_to_DER_cert(f.read())
            # Channel binding (CBT) is checked when the client sends one, like CbtHardeningLevel=Relaxed.
            self.channel_bindings = gssapi.raw.ChannelBindings(
                application_data=b'tls-server-end-point:' + cert_hash(der))

    def handle_error(self, request, client_address):
        # TLS handshakes a client aborts (wrong CA tests) and dropped connections: one line, no traceback.
        err = sys.exc_info()[1]
        log('connection from %s:%d ended: %s: %s' % (client_address[0], client_address[1], type(err).__name__, err))

    def new_context(self, spnego=False):
        creds = self.creds
        if spnego:
            creds = gssapi.Credentials(usage='accept', mechs=[gssapi.OID.from_int_seq(SPNEGO_OID)])
        return gssapi.SecurityContext(creds=creds, usage='accept', channel_bindings=self.channel_bindings)


def main():
    global gssapi
    parser = argparse.ArgumentParser(description='WS-Management (WinRM) test peer')
    parser.add_argument('--port', type=int, default=0)
    parser.add_argument('--https', action='store_true')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--users', required=True, help='NTLM_USER_FILE: lines DOMAIN:user:password')
    parser.add_argument('--home', default=os.getcwd(), help='working directory of shells without WorkingDirectory')
    parser.add_argument('--max-shells', type=int, default=30, help="MaxShellsPerUser (Windows' default 30)")
    parser.add_argument('--max-envelope-size', type=int, default=153600, help='bytes (MaxEnvelopeSizekb=150)')
    parser.add_argument('--allow-unencrypted', action='store_true')
    args = parser.parse_args()
    os.environ['NTLM_USER_FILE'] = os.path.abspath(args.users)
    import gssapi as _gssapi
    import gssapi.raw  # noqa: F401
    gssapi = _gssapi

    server = Server(args)

    def stop(signum, frame):
        server.shells.close_all()
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    port = server.server_address[1]
    log('listening on %s://127.0.0.1:%d/wsman (max shells %d, allow unencrypted %s)' % (
        'https' if args.https else 'http', port, args.max_shells, args.allow_unencrypted))
    sys.stdout.write('LISTENING %d\n' % port)
    sys.stdout.flush()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    while True:
        signal.pause()


if __name__ == '__main__':
    main()

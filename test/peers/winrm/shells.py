"""The Windows Remote Shell plugin (…/windows/shell/cmd): shells, commands and their processes.

Command lines run with /bin/sh on this machine, with test/peers/winrm/bin (the powershell/cmd stand-ins)
first in PATH. Each command gets its own process group so terminate / shell Delete kill the whole tree.
"""
import base64
import ctypes
import os
import queue
import signal
import subprocess
import threading
import time
from xml.sax.saxutils import escape

import soap
from soap import Fault, q

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.join(HERE, 'bin')
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _child_setup():
    # Dies with the peer even if the peer is SIGKILLed (no stray processes after a crashed test run).
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


_spawn_queue = queue.Queue()


def _spawner():
    # PR_SET_PDEATHSIG fires when the *thread* that forked exits, so every child is forked by this one
    # thread that lives as long as the peer (request threads end with their connection).
    while True:
        args, kwargs, box, done = _spawn_queue.get()
        try:
            box.append(subprocess.Popen(args, preexec_fn=_child_setup, **kwargs))
        except Exception as err:  # handed to the requesting thread
            box.append(err)
        done.set()


threading.Thread(target=_spawner, daemon=True, name='spawner').start()


def spawn(args, **kwargs):
    box, done = [], threading.Event()
    _spawn_queue.put((args, kwargs, box, done))
    done.wait()
    if isinstance(box[0], Exception):
        raise box[0]
    return box[0]


class Command:
    def __init__(self, shell, command_line):
        self.id = soap.new_guid()
        self.shell = shell
        self.command_line = command_line
        self.cond = threading.Condition()
        self.chunks = []  # [(stream name, bytes)] not yet received
        self.open_streams = {'stdout', 'stderr'}
        self.exit_code = None
        self.exited_at = None
        self.ended = False  # End/Done already delivered
        self.proc = spawn(
            ['/bin/sh', '-c', command_line], cwd=shell.cwd, env=shell.env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        for name, pipe in (('stdout', self.proc.stdout), ('stderr', self.proc.stderr)):
            threading.Thread(target=self._pump, args=(name, pipe), daemon=True).start()
        threading.Thread(target=self._wait, daemon=True).start()

    def _pump(self, name, pipe):
        fd = pipe.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b''
            with self.cond:
                if data:
                    self.chunks.append((name, data))
                else:
                    self.open_streams.discard(name)
                self.cond.notify_all()
            if not data:
                pipe.close()
                return

    def _wait(self):
        code = self.proc.wait()
        with self.cond:
            # Killed by a signal: report what a shell would ($? = 128 + signal number).
            self.exit_code = code if code >= 0 else 128 - code
            self.exited_at = time.monotonic()
            self.cond.notify_all()

    def _done(self):
        # Done once the process exited and its pipes drained; a background grandchild that keeps a pipe
        # open does not hold the command for more than 2 s after the exit.
        if self.exit_code is None:
            return False
        return not self.open_streams or time.monotonic() - self.exited_at > 2

    def send_stdin(self, data, end):
        try:
            if data:
                self.proc.stdin.write(data)
                self.proc.stdin.flush()
            if end:
                self.proc.stdin.close()
        except (BrokenPipeError, ValueError, OSError):
            pass  # the process already closed stdin or exited, as on Windows the data is dropped

    def receive(self, timeout, max_bytes):
        """Waits up to timeout s for output or completion; returns (chunks, done) or raises TimedOut."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.chunks and not self._done():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise soap.timed_out()
                # Wake at least every 0.5 s to apply the grace period of _done().
                self.cond.wait(min(left, 0.5))
            out, size = [], 0
            while self.chunks and size < max_bytes:
                name, data = self.chunks[0]
                room = max_bytes - size
                if len(data) > room:
                    out.append((name, data[:room]))
                    self.chunks[0] = (name, data[room:])
                    size = max_bytes
                    break
                out.append(self.chunks.pop(0))
                size += len(data)
            done = not self.chunks and self._done()
            if done:
                self.ended = True
            return out, done

    def signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def kill(self):
        self.signal(signal.SIGKILL)
        try:
            self.proc.stdin.close()
        except OSError:
            pass


class Shell:
    def __init__(self, owner, cwd, env, input_streams, output_streams):
        self.id = soap.new_guid()
        self.owner = owner
        self.cwd = cwd
        self.env = env
        self.input_streams = input_streams
        self.output_streams = output_streams
        self.commands = {}
        self.created = time.time()


class ShellService:
    def __init__(self, max_shells_per_user, max_envelope_size, home, machine):
        self.max_shells_per_user = max_shells_per_user
        self.max_envelope_size = max_envelope_size
        self.home = home
        self.machine = machine
        self.tmp = os.path.join(home, 'AppData', 'Local', 'Temp')
        os.makedirs(self.tmp, exist_ok=True)
        self.lock = threading.Lock()
        self.shells = {}

    # -- dispatch ---------------------------------------------------------------------------------

    def handle(self, req, user, endpoint):
        """Returns (response XML, shell id for the log); raises soap.Fault."""
        if len(req.raw) > self.max_envelope_size:
            raise soap.encoding_limit(self.max_envelope_size)
        handlers = {
            soap.ACTION_CREATE: self.create,
            soap.ACTION_DELETE: self.delete,
            soap.ACTION_COMMAND: self.command,
            soap.ACTION_SEND: self.send,
            soap.ACTION_RECEIVE: self.receive,
            soap.ACTION_SIGNAL: self.signal,
        }
        handler = handlers.get(req.action)
        if handler is None:
            raise soap.action_not_supported(req.action)
        if (req.resource_uri or '').lower() != soap.CMD_URI.lower():
            raise soap.invalid_resource_uri(req.resource_uri)
        return handler(req, user, endpoint)

    def _shell(self, req, user):
        shell_id = req.shell_id
        with self.lock:
            shell = self.shells.get((shell_id or '').upper())
        # Windows answers a shell of another user exactly like an unknown one.
        if shell is None or shell.owner != user:
            raise soap.shell_not_found(shell_id)
        return shell

    @staticmethod
    def _command(shell, command_id):
        cmd = shell.commands.get((command_id or '').upper())
        if cmd is None:
            raise soap.command_not_found(command_id)
        return cmd

    # -- operations -------------------------------------------------------------------------------

    def create(self, req, user, endpoint):
        shell_el = req.body.find(q('rsp', 'Shell'))
        if shell_el is None:
            raise soap.schema_violation('Create needs an rsp:Shell body.')
        text = lambda local, default=None: (shell_el.findtext(q('rsp', local)) or default)
        env = dict(os.environ)
        env.pop('NTLM_USER_FILE', None)
        env['PATH'] = BIN + os.pathsep + env.get('PATH', '/usr/bin:/bin')
        env['HOME'] = self.home
        # Temp files of commands (the powershell stand-in's script copies) live and die with the peer,
        # even when terminate SIGKILLs them before they clean up.
        env['TMPDIR'] = env['TEMP'] = env['TMP'] = self.tmp
        env['USERNAME'] = user
        env_el = shell_el.find(q('rsp', 'Environment'))
        if env_el is not None:
            for var in env_el.findall(q('rsp', 'Variable')):
                if var.get('Name'):
                    env[var.get('Name')] = var.text or ''
        cwd = (text('WorkingDirectory') or '').strip() or self.home
        if not os.path.isdir(cwd):
            raise soap.directory_invalid()
        shell = Shell(user, cwd, env, text('InputStreams', 'stdin'), text('OutputStreams', 'stdout stderr'))
        with self.lock:
            owned = sum(1 for s in self.shells.values() if s.owner == user)
            if owned >= self.max_shells_per_user:
                raise soap.max_shells(self.max_shells_per_user)
            self.shells[shell.id] = shell
        body = (
            '<x:ResourceCreated><a:Address>%s</a:Address><a:ReferenceParameters>'
            '<w:ResourceURI>%s</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">%s</w:Selector>'
            '</w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>'
            '<rsp:Shell><rsp:ShellId>%s</rsp:ShellId><rsp:ResourceUri>%s</rsp:ResourceUri><rsp:Owner>%s</rsp:Owner>'
            '<rsp:ClientIP>127.0.0.1</rsp:ClientIP><rsp:IdleTimeOut>PT7200.000S</rsp:IdleTimeOut>'
            '<rsp:InputStreams>%s</rsp:InputStreams><rsp:OutputStreams>%s</rsp:OutputStreams>'
            '<rsp:ShellRunTime>P0DT0H0M0S</rsp:ShellRunTime><rsp:ShellInactivity>P0DT0H0M0S</rsp:ShellInactivity>'
            '</rsp:Shell>'
        ) % (escape(endpoint), soap.CMD_URI, shell.id, shell.id, soap.CMD_URI, escape(user),
             escape(shell.input_streams), escape(shell.output_streams))
        return soap.envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/CreateResponse', req.message_id, body), shell.id

    def delete(self, req, user, endpoint):
        shell = self._shell(req, user)
        with self.lock:
            self.shells.pop(shell.id, None)
        for cmd in list(shell.commands.values()):
            cmd.kill()
        return soap.envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/DeleteResponse', req.message_id, ''), shell.id

    def command(self, req, user, endpoint):
        shell = self._shell(req, user)
        line_el = req.body.find(q('rsp', 'CommandLine'))
        if line_el is None or not (line_el.findtext(q('rsp', 'Command')) or '').strip():
            raise soap.schema_violation('Command needs rsp:CommandLine/rsp:Command.')
        parts = [(line_el.findtext(q('rsp', 'Command')) or '').strip()]
        # Windows joins Command and each Arguments element with spaces into one command line.
        parts += [a.text or '' for a in line_el.findall(q('rsp', 'Arguments'))]
        cmd = Command(shell, ' '.join(p for p in parts if p))
        shell.commands[cmd.id] = cmd
        body = '<rsp:CommandResponse><rsp:CommandId>%s</rsp:CommandId></rsp:CommandResponse>' % cmd.id
        return soap.envelope(soap.SHELL + '/CommandResponse', req.message_id, body), shell.id

    def send(self, req, user, endpoint):
        shell = self._shell(req, user)
        send_el = req.body.find(q('rsp', 'Send'))
        if send_el is None:
            raise soap.schema_violation('Send needs an rsp:Send body.')
        for stream in send_el.findall(q('rsp', 'Stream')):
            cmd = self._command(shell, stream.get('CommandId'))
            data = base64.b64decode((stream.text or '').strip()) if (stream.text or '').strip() else b''
            cmd.send_stdin(data, (stream.get('End') or '').lower() == 'true')
        return soap.envelope(soap.SHELL + '/SendResponse', req.message_id, '<rsp:SendResponse/>'), shell.id

    def receive(self, req, user, endpoint):
        shell = self._shell(req, user)
        desired = req.body.find('%s/%s' % (q('rsp', 'Receive'), q('rsp', 'DesiredStream')))
        if desired is None:
            raise soap.schema_violation('Receive needs rsp:Receive/rsp:DesiredStream.')
        cmd = self._command(shell, desired.get('CommandId'))
        # Keep the reply inside the client's MaxEnvelopeSize: base64 grows by 4/3, plus the envelope.
        max_env = req.max_envelope_size or 153600
        max_bytes = max(1024, (max_env - 4096) * 3 // 4)
        chunks, done = cmd.receive(req.operation_timeout or 60.0, max_bytes)
        streams = ''.join('<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>'
                          % (name, cmd.id, base64.b64encode(data).decode('ascii')) for name, data in chunks)
        if done:
            streams += ''.join('<rsp:Stream Name="%s" CommandId="%s" End="true"></rsp:Stream>' % (name, cmd.id)
                               for name in ('stdout', 'stderr'))
            state = ('<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>'
                     % (cmd.id, soap.STATE_DONE, cmd.exit_code))
        else:
            state = '<rsp:CommandState CommandId="%s" State="%s"/>' % (cmd.id, soap.STATE_RUNNING)
        body = '<rsp:ReceiveResponse>%s%s</rsp:ReceiveResponse>' % (streams, state)
        return soap.envelope(soap.SHELL + '/ReceiveResponse', req.message_id, body), shell.id

    def signal(self, req, user, endpoint):
        shell = self._shell(req, user)
        sig_el = req.body.find(q('rsp', 'Signal'))
        if sig_el is None:
            raise soap.schema_violation('Signal needs an rsp:Signal body.')
        cmd = self._command(shell, sig_el.get('CommandId'))
        code = (sig_el.findtext(q('rsp', 'Code')) or '').strip()
        if code == soap.SIGNAL_TERMINATE:
            cmd.kill()
            shell.commands.pop(cmd.id, None)
        elif code in (soap.SIGNAL_CTRL_C, soap.SIGNAL_CTRL_BREAK):
            cmd.signal(signal.SIGINT)
        else:
            raise soap.schema_violation('Unknown signal code %s.' % code)
        return soap.envelope(soap.SHELL + '/SignalResponse', req.message_id, '<rsp:SignalResponse/>'), shell.id

    def close_all(self):
        with self.lock:
            shells, self.shells = list(self.shells.values()), {}
        for shell in shells:
            for cmd in list(shell.commands.values()):
                cmd.kill()

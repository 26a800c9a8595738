"""What a created or exec'd process is given and how the caller stays
attached: its terminal (attached or sent to --console-socket), passed fds,
the pid file, signal forwarding and waiting."""
import os
import _signal as signal     # numbers, not the signal module's enums (~4 ms)

from libcontainer.errors import LibcontainerError

from .commandline import UsageError
from ..common import forward_signals


def terminal_size_for(process, console_socket):
    """An attached terminal: the pty starts with our size (before exec)."""
    if process.tty and not console_socket and process.console_size is None:
        from ..console import terminal_size
        process.console_size = terminal_size(0)


def check_console(tty, console_socket, detached):
    if tty and detached and not console_socket:
        raise UsageError("cannot allocate a tty for a detached container without "
                         "--console-socket")
    if console_socket and not tty:
        raise UsageError("--console-socket needs process.terminal (or --tty) to be set")


def passed_fds(preserve, env):
    """--preserve-fds N and systemd's LISTEN_FDS: the fds from 3 on that the
    process gets, and its environment."""
    try:
        n = int(preserve)
        if n < 0:
            raise ValueError
    except ValueError:
        raise UsageError(f"--preserve-fds: {preserve!r} is not a number >= 0") from None
    listen = os.environ.get("LISTEN_FDS", "")
    if listen.isdigit() and int(listen):
        env = [e for e in env if not e.startswith(("LISTEN_FDS=", "LISTEN_PID="))]
        env += [f"LISTEN_FDS={listen}", "LISTEN_PID=1"]
        n = max(n, int(listen))
    return list(range(3, 3 + n)), env


def hand_over_console(process, console_socket):
    """Send the pty master to --console-socket (SCM_RIGHTS, as runc), or
    keep it for attend to copy."""
    if process.console_fd is None:
        raise LibcontainerError("the process asked for a terminal but none was allocated")
    if not console_socket:
        return
    import socket
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(console_socket)
            socket.send_fds(s, [b"/dev/ptmx"], [process.console_fd])
    except OSError as e:
        raise LibcontainerError(f"--console-socket {console_socket}: {e.strerror}") from None
    os.close(process.console_fd)
    process.console_fd = None


def send_pidfd(pid, path):
    """--pidfd-socket: a pidfd of `pid` to the AF_UNIX socket `path`
    (SCM_RIGHTS, as runc 1.2)."""
    if not path:
        return
    import socket
    fd = None
    try:
        fd = os.pidfd_open(pid)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(path)
            socket.send_fds(s, [b"pidfd"], [fd])
    except OSError as e:
        raise LibcontainerError(f"--pidfd-socket {path}: {e.strerror}") from None
    finally:
        if fd is not None:
            os.close(fd)


def write_pid_file(path, pid):
    """Atomically, as containerd reads it as soon as we exit."""
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    # never through a file planted there (a symlink to a file of ours)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o644)
    with open(fd, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def forward_to(process):
    """Forward the usual signals to `process` (SIGWINCH too, unless it has a
    terminal: then its size follows ours)."""
    from ..common import FORWARDED
    signals = [s for s in FORWARDED if not (process.tty and s == signal.SIGWINCH)]
    forward_signals(lambda: process.pid if process.returncode is None else 0, signals)


def attend(process, cleanup=None):
    """Wait for an attached process (copying its terminal if it has one);
    its exit status, 128+signal when killed."""
    forward_to(process)
    try:
        if process.console_fd is not None:
            from ..console import relay
            master, process.console_fd = process.console_fd, None
            return relay(master, process)
        return process.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if cleanup is not None:
            cleanup()

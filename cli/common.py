"""What nsinit and pyrunc share: one-line errors, signal forwarding, logging."""
import os
import sys
import _signal
from _signal import SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH

from libcontainer import log
from libcontainer.errors import LibcontainerError

# plain numbers from _signal: the signal module builds enums (~4 ms), which
# only kill's names need
FORWARDED = (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH)


def run_cli(group, prog, argv=None):
    """Run a click group; turn every failure into one line on stderr (and an
    error record in the log) and a non-zero exit status."""
    import click
    try:
        rv = group.main(args=argv, prog_name=prog, standalone_mode=False)
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        fail(prog, e.format_message(), e.exit_code)
    except click.exceptions.Abort:
        fail(prog, "aborted", 1)
    except LibcontainerError as e:
        fail(prog, str(e), 1)
    except OSError as e:
        fail(prog, f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
    except KeyboardInterrupt:
        return 130
    return rv or 0


def message(e):
    """The one line for a LibcontainerError or an OSError."""
    if isinstance(e, OSError):
        return f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}"
    return str(e)


def fail(prog, message, code=1):
    if log.to_file():
        log.error(message)     # engines read the last error record of the log
    sys.stderr.write(f"{prog}: {message}\n")
    sys.stderr.flush()
    os._exit(code) if code >= 128 else sys.exit(code)


def exit_now(main):
    """sys.exit(main()) without the interpreter's teardown: freeing every
    module costs a CLI call 5-8 ms of CPU, and nothing of ours needs it
    (the log is line-buffered; no atexit hook, no thread)."""
    try:
        code = main()
    except SystemExit as e:
        code = e.code
    if code is not None and not isinstance(code, int):
        sys.stderr.write(f"{code}\n")
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    sys.stderr.flush()
    os._exit(code or 0)


def parse_signal(text):
    """'9', 'KILL', 'SIGKILL' -> signal number. Any number goes, 0 included
    (kill 0: is it alive?): the kernel judges it, as with runc."""
    text = str(text).strip().upper()
    if text.isascii() and text.isdigit():     # not '²': int() refuses it
        if int(text) >= 1 << 31:                # a C int for kill(2)
            raise LibcontainerError(f"invalid signal {text!r}")
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    # the names signal.Signals has, without building it (~4 ms)
    number = None if name.startswith("SIG_") else getattr(_signal, name, None)
    if not isinstance(number, int):
        raise LibcontainerError(f"invalid signal {text!r}")
    return number


def forward_signals(pid_getter, signals=FORWARDED):
    """Forward `signals` received by this process to the pid returned by
    `pid_getter()`."""
    def handler(sig, frame):
        pid = pid_getter()
        if pid:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    import signal
    for sig in signals:
        signal.signal(sig, handler)

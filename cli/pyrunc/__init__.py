"""pyrunc: an OCI runtime with runc's command line, for containerd, podman
and people.

Each command is a function taking (runtime, options, arguments), registered
with ``@command`` in the module of its group: lifecycle (create, run,
start, kill, delete, pause, resume), exec, inspect (state, list, ps,
events), update, about (spec, features, help). The flag parser and the
command table are in commandline. See docs/pyrunc.md.
"""
import os
import sys

from libcontainer.errors import LibcontainerError

from .commandline import GLOBAL, PROG, main, parse
from ..common import fail

# the module of each command: a hot command imports only its own (the
# others' imports, signal and json, cost `state` ~5 ms); help and the rest
# import them all
GROUPS = {"state": "inspect", "list": "inspect", "ps": "inspect", "events": "inspect",
          "create": "lifecycle", "run": "lifecycle", "start": "lifecycle",
          "kill": "lifecycle", "delete": "lifecycle", "pause": "lifecycle",
          "resume": "lifecycle", "exec": "exec", "update": "update"}


def register_commands(argv):
    try:
        rest = parse(GLOBAL, argv, stop_after=1)[1]
    except LibcontainerError:
        rest = []       # main() reports it
    group = GROUPS.get(rest[0]) if rest else None
    if group is not None:
        __import__(f"{__name__}.{group}")
    else:
        from . import about, exec, inspect, lifecycle, update  # noqa: F401


def cli(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        register_commands(argv)
        code = main(argv)
    except LibcontainerError as e:
        fail(PROG, str(e), getattr(e, "code", 1))
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 1
    except OSError as e:
        fail(PROG, f"{e.filename + ': ' if e.filename else ''}{e.strerror or e}", 1)
    except KeyboardInterrupt:
        code = 130
    try:
        sys.stdout.flush()
    except BrokenPipeError:       # `pyrunc list | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(code)

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

from . import about, exec, inspect, lifecycle, update  # noqa: F401  (register the commands)
from .commandline import PROG, main
from ..common import fail


def cli(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
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

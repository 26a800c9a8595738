"""pyrunc's command line: runc's flag syntax, the command table, help.

Parsed here, not by click, the way runc's CLI library parses it: ``--flag
value``, ``--flag=value``, single-dash long flags (``-bundle``), boolean
flags taking ``=true``/``=false``, and flags after the container id (but for
``exec`` and ``ps``, where everything after the id is the command or
ps(1)'s arguments). That also keeps the hot commands free of any import
they do not need.
"""
import os
import sys

from libcontainer import log
from libcontainer.errors import LibcontainerError

PROG = "pyrunc"
OCI_VERSION = "1.2.1"
CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"


class UsageError(LibcontainerError):
    """A malformed command line."""


# --------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------

class Opt:
    """A flag: ``kind`` is "flag" (boolean), "value" or "multi" (repeatable)."""

    def __init__(self, names, kind="flag", default=None, help="", metavar="VALUE"):
        self.names = names.split()
        self.kind = kind
        self.default = False if kind == "flag" and default is None else default
        self.help = help
        self.metavar = metavar

    @property
    def dest(self):
        return self.names[0].replace("-", "_")

    def spelling(self):
        text = ", ".join(("-" if len(n) == 1 else "--") + n for n in self.names)
        return text if self.kind == "flag" else f"{text} {self.metavar}"


_BOOLS = {"true": True, "1": True, "t": True, "yes": True,
          "false": False, "0": False, "f": False, "no": False}


def parse(opts, argv, stop_after=None):
    """(options namespace, positional arguments). After `stop_after`
    positional arguments the rest is taken verbatim."""
    from types import SimpleNamespace
    table = {n: o for o in opts for n in o.names}
    values = {o.dest: [] if o.kind == "multi" else o.default for o in opts}
    pos = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if stop_after is not None and len(pos) >= stop_after:
            pos.append(arg)
            continue
        if arg == "--":
            pos.extend(argv[i:])
            break
        if len(arg) < 2 or arg[0] != "-":
            pos.append(arg)
            continue
        name, eq, value = arg.lstrip("-").partition("=")
        opt = table.get(name)
        if opt is None:
            raise UsageError(f"flag provided but not defined: -{name}")
        if opt.kind == "flag":
            if eq and value.lower() not in _BOOLS:
                raise UsageError(f"invalid boolean value {value!r} for -{name}")
            values[opt.dest] = _BOOLS[value.lower()] if eq else True
            continue
        if not eq:
            if i >= len(argv):
                raise UsageError(f"flag needs an argument: -{name}")
            value = argv[i]
            i += 1
        if opt.kind == "multi":
            values[opt.dest].append(value)
        else:
            values[opt.dest] = value
    return SimpleNamespace(**values), pos


class Command:
    def __init__(self, fn, usage, opts, stop_after):
        self.fn, self.usage, self.opts, self.stop_after = fn, usage, opts, stop_after
        self.name = fn.__name__.rstrip("_")
        self.help = (fn.__doc__ or "").strip()


COMMANDS = {}


def command(usage="", *opts, stop_after=None):
    def register(fn):
        cmd = Command(fn, usage, opts, stop_after)
        COMMANDS[cmd.name] = cmd
        return fn
    return register


GLOBAL = (
    Opt("root", "value", None, "directory for the containers' state "
        "(default /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc when not root)", "DIR"),
    Opt("log", "value", "", "write the log to FILE (default stderr)", "FILE"),
    Opt("log-format", "value", "text", "text or json", "FORMAT"),
    Opt("debug", help="log debug records"),
    Opt("systemd-cgroup", help="cgroupsPath is slice:prefix:name, managed by systemd"),
    Opt("rootless", "value", "auto", "accepted for compatibility (true, false, auto)"),
    Opt("criu", "value", "criu", "accepted and ignored: no checkpoint/restore", "PATH"),
    Opt("version v", help="print the version"),
    Opt("help h", help="show help"),
)


def main(argv):
    g, rest = parse(GLOBAL, argv, stop_after=1)
    if g.log_format not in ("text", "json"):
        raise UsageError(f"--log-format: {g.log_format!r} is not text or json")
    log.configure(level="debug" if g.debug else "warning", fmt=g.log_format,
                  file=g.log or None)
    if g.version:
        print(version_text())
        return 0
    if g.help or not rest:
        print(usage_text())
        return 0 if g.help else 1
    name, argv = rest[0], rest[1:]
    cmd = COMMANDS.get(name)
    if cmd is None:
        raise UsageError(f"no such command {name!r} (see '{PROG} --help')")
    opts, args = parse(cmd.opts + (Opt("help h", help="show help"),), argv, cmd.stop_after)
    if opts.help:
        print(command_help(cmd))
        return 0
    from .runtime import Runtime
    return cmd.fn(Runtime(g), opts, args) or 0


def usage_text():
    lines = [f"usage: {PROG} [global options] COMMAND [options] [arguments]", "",
             "An OCI container runtime with runc's command line.", "", "commands:"]
    lines += [f"  {c.name:<10} {c.help.splitlines()[0] if c.help else ''}"
              for c in COMMANDS.values()]
    lines += ["", "global options:"] + [f"  {o.spelling():<24} {o.help}" for o in GLOBAL]
    return "\n".join(lines)


def command_help(cmd):
    lines = [f"usage: {PROG} {cmd.name} [options] {cmd.usage}".rstrip(), "", cmd.help]
    if cmd.opts:
        lines += ["", "options:"] + [f"  {o.spelling():<28} {o.help}" for o in cmd.opts]
    return "\n".join(lines)


def version_text():
    import libcontainer
    return "\n".join([f"{PROG} version {libcontainer.__version__}",
                      f"commit: {_git_commit() or 'unknown'}", f"spec: {OCI_VERSION}",
                      f"python: {sys.version.split()[0]}"])


def _git_commit():
    """The source checkout's HEAD, for an editable install; else None."""
    import libcontainer
    git = os.path.join(os.path.dirname(os.path.dirname(libcontainer.__file__)), ".git")
    try:
        with open(os.path.join(git, "HEAD")) as f:
            head = f.read().strip()
        if head.startswith("ref: "):
            with open(os.path.join(git, head[5:])) as f:
                head = f.read().strip()
        return head[:12]
    except OSError:
        return None


def need_id(args, name, extra=0):
    if not args:
        raise UsageError(f"{name}: missing the container id")
    if len(args) > 1 + extra:
        raise UsageError(f"{name}: unexpected arguments: {' '.join(args[1 + extra:])}")
    cid = args[0]
    if not cid or "/" in cid or cid in (".", ".."):
        raise UsageError(f"invalid container id {cid!r}")
    return cid


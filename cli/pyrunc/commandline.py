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
    def __init__(self, fn, usage, opts, stop_after, fail_code):
        self.fn, self.usage, self.opts, self.stop_after = fn, usage, opts, stop_after
        self.fail_code = fail_code      # exit status of a failure of the runtime
        self.name = fn.__name__.rstrip("_")
        self.help = (fn.__doc__ or "").strip()


COMMANDS = {}
# runc's order in its help (and "help, h" last)
ORDER = ("checkpoint", "create", "delete", "events", "exec", "kill", "list", "pause", "ps",
         "restore", "resume", "run", "spec", "start", "state", "update", "features", "help")


def command(usage="", *opts, stop_after=None, fail_code=1):
    def register(fn):
        cmd = Command(fn, usage, opts, stop_after, fail_code)
        COMMANDS[cmd.name] = cmd
        return fn
    return register


GLOBAL = (
    Opt("debug", help="log debug records"),
    Opt("log", "value", "", "write the log to FILE (default stderr)", "FILE"),
    Opt("log-format", "value", "text", "text (logfmt) or json", "FORMAT"),
    Opt("root", "value", None, "directory for the containers' state "
        "(default /run/pyrunc, or $XDG_RUNTIME_DIR/pyrunc when not root)", "DIR"),
    Opt("criu", "value", "criu", "accepted and ignored: no checkpoint/restore", "PATH"),
    Opt("systemd-cgroup", help="cgroupsPath is slice:prefix:name, managed by systemd"),
    Opt("rootless", "value", "auto", "accepted for compatibility (true, false, auto)"),
    Opt("help h", help="show help"),
    Opt("version v", help="print the version"),
)
HELP = Opt("help h", help="show help")


class NoHelpTopic(UsageError):
    """An unknown command: runc's CLI library exits 3."""
    code = 3

    def __init__(self, name):
        super().__init__(f"No help topic for '{name}'")


def main(argv):
    g, rest = parse(GLOBAL, argv, stop_after=1)
    if g.log_format not in ("text", "json"):
        raise UsageError(f"--log-format: {g.log_format!r} is not text or json")
    if g.version:
        print(version_text())
        return 0
    if g.help or not rest:
        print(usage_text())
        return 0
    name, argv = rest[0], rest[1:]
    cmd = COMMANDS.get("help" if name == "h" else name)
    if cmd is None:
        raise NoHelpTopic(name)
    opts, args = parse(cmd.opts + (HELP,), argv, cmd.stop_after)
    if opts.help:
        print(command_help(cmd))
        return 0
    # before the runtime opens anything of its own (the log): an fd it
    # opened must never be handed to the container as a "preserved" one
    if hasattr(opts, "preserve_fds"):      # create, run, exec
        check_passed_fds(opts.preserve_fds)
    log.configure(level="debug" if g.debug else "warning", fmt=g.log_format,
                  file=log.open_file(g.log) if g.log else None)
    log.debug("pyrunc", command=cmd.name, args=" ".join(args))
    from .runtime import Runtime
    rt = Runtime(g)
    try:
        return cmd.fn(rt, opts, args) or 0
    except (LibcontainerError, OSError) as e:
        if cmd.fail_code == 1 or isinstance(e, UsageError):
            raise
        from ..common import fail, message
        fail(PROG, f"{cmd.name} failed: {message(e)}", cmd.fail_code)


def check_passed_fds(preserve):
    """--preserve-fds N (and $LISTEN_FDS): each of those fds must be open in
    the caller, not be one the runtime happens to have open."""
    import fcntl
    from .stdio import passed_fds
    for fd in passed_fds(preserve, [])[0]:
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            raise UsageError(f"--preserve-fds {preserve} (LISTEN_FDS="
                             f"{os.environ.get('LISTEN_FDS', '')}): fd {fd} is not open "
                             f"in the caller") from None


def _options(opts):
    """runc's (urfave/cli's) option lines: names, padded, then the help."""
    def names(o):
        value = "" if o.kind == "flag" else " value"
        return ", ".join(("-" if len(n) == 1 else "--") + n + value for n in o.names)
    def default(o):
        if o.kind != "value" or o.default in (None, ""):
            return ""
        value = o.default if o.default.isdigit() else f'"{o.default}"'
        return f" (default: {value})"
    width = max(len(names(o)) for o in opts) + 2
    return [f"   {names(o):<{width}}{o.help}{default(o)}".rstrip() for o in opts]


def _ordered():
    return sorted(COMMANDS.values(),
                  key=lambda c: ORDER.index(c.name) if c.name in ORDER else len(ORDER))


def usage_text():
    titles = [("help, h" if c.name == "help" else c.name,
               c.help.splitlines()[0] if c.help else "") for c in _ordered()]
    width = max(len(t) for t, _ in titles) + 2
    return "\n".join(
        ["NAME:", f"   {PROG} - Open Container Initiative runtime, on libcontainer", "",
         "USAGE:", f"   {PROG} [global options] command [command options] [arguments...]", "",
         "VERSION:", "   " + version_text().split("\n", 1)[0].split()[-1], "",
         "COMMANDS:"] + [f"   {t:<{width}}{h}".rstrip() for t, h in titles] +
        ["", "GLOBAL OPTIONS:"] + _options(GLOBAL))


def command_help(cmd):
    title, _, description = cmd.help.partition("\n")
    opts = " [command options]" if cmd.opts else ""
    lines = ["NAME:", f"   {PROG} {cmd.name} - {title}", "",
             "USAGE:", f"   {PROG} {cmd.name}{opts} {cmd.usage}".rstrip(), "",
             "DESCRIPTION:", "   " + (description.strip() or title)]
    if cmd.opts:
        lines += ["", "OPTIONS:"] + _options(cmd.opts)
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


# a set, not a regular expression: re costs a hot command ~5 ms
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_+.-")


def need_id(args, name, extra=0):
    """The container id of a command taking one (and up to `extra` more
    arguments), by runc's rules: [A-Za-z0-9_+.-]+, not "." or ".."."""
    if not args or len(args) > 1 + extra:
        want = ("exactly 1" if not extra else "a minimum of 1" if not args
                else f"a maximum of {1 + extra}")
        raise UsageError(f'"{name}" requires {want} argument(s)')
    cid = args[0]
    if not cid:
        raise UsageError("container id cannot be empty")
    if not _ID_CHARS.issuperset(cid) or cid in (".", ".."):
        raise UsageError(f"invalid container ID format: {cid!r}")
    return cid

"""pyrunc: an OCI runtime with runc's command line, for containerd, podman
and people.

The command line is parsed here, not by click, the way runc's CLI library
parses it: ``--flag value``, ``--flag=value``, single-dash long flags
(``-bundle``), boolean flags taking ``=true``/``=false``, and flags after
the container id (but for ``exec`` and ``ps``, where everything after the id
is the command or ps(1)'s arguments). That also keeps ``state``, ``kill``,
``list`` and ``start`` -- called for every container an engine runs -- free
of any import they do not need.

Each command is a function taking (runtime, options, arguments), registered
with ``@command``. See docs/pyrunc.md.
"""
import json
import os
import signal
import sys

from libcontainer import log
from libcontainer.errors import ContainerNotExists, LibcontainerError

from .common import fail, forward_signals, parse_signal

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


def default_root():
    if os.geteuid() == 0:
        return "/run/pyrunc"
    return os.path.join(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/pyrunc-{os.geteuid()}",
                        "pyrunc")


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


# --------------------------------------------------------------------------
# the runtime: state root, containers
# --------------------------------------------------------------------------

class Runtime:
    def __init__(self, g):
        self.root = os.path.abspath(g.root or default_root())
        self.systemd = g.systemd_cgroup
        self._factory = None
        self.hooks = None       # a command that needs only a few hooks says which

    @property
    def factory(self):
        if self._factory is None:
            import libcontainer
            self._factory = libcontainer.new(self.root, hooks=self.hooks)
        return self._factory

    def state_dir(self, cid):
        return os.path.join(self.root, cid)

    def read(self, cid):
        """(state.json as a dict, status) without loading config or plugins."""
        from libcontainer import state as st
        state_dir = self.state_dir(cid)
        try:
            data = st.read(state_dir)
        except FileNotFoundError:
            raise ContainerNotExists(cid) from None
        except (OSError, ValueError) as e:
            raise LibcontainerError(f"container {cid}: state.json is unreadable ({e})") \
                from None
        return data, st.status(data, state_dir)

    def load(self, cid):
        return self.factory.load(cid)


def oci_state(cid, data, status):
    """The runtime-spec state of a container, plus runc's rootfs, created and
    owner."""
    oci = data.get("oci") or {}
    config = data.get("config") or {}
    out = {"ociVersion": OCI_VERSION, "id": cid,
           "pid": data.get("init_pid", 0) if status != STOPPED else 0,
           "status": status, "bundle": oci.get("bundle", ""),
           "rootfs": config.get("rootfs", ""), "created": data.get("created") or "",
           "owner": oci.get("owner", "")}
    if config.get("labels"):
        out["annotations"] = config["labels"]
    return out


# --------------------------------------------------------------------------
# queries and signals (the hot paths: no config, no plugins)
# --------------------------------------------------------------------------

@command("ID")
def state(rt, o, args):
    """Print the state of a container as JSON."""
    cid = need_id(args, "state")
    data, status = rt.read(cid)
    print(json.dumps(oci_state(cid, data, status), indent=2))


@command("", Opt("format f", "value", "table", "table or json", "FORMAT"),
         Opt("quiet q", help="print only the ids"))
def list_(rt, o, args):
    """List the containers under --root."""
    from libcontainer import state as st
    try:
        names = sorted(n for n in os.listdir(rt.root) if os.path.isdir(rt.state_dir(n)))
    except FileNotFoundError:
        names = []
    rows = []
    for name in names:
        try:
            data = st.read(rt.state_dir(name))
        except (OSError, ValueError):
            continue        # half-created or being removed
        rows.append(oci_state(name, data, st.status(data, rt.state_dir(name))))
    if o.quiet:
        for row in rows:
            print(row["id"])
    elif o.format == "json":
        print(json.dumps(rows, separators=(",", ":")))
    elif o.format == "table":
        table = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
        table += [(r["id"], str(r["pid"]), r["status"], r["bundle"], r["created"], r["owner"])
                  for r in rows]
        widths = [max(len(row[i]) for row in table) for i in range(5)]
        for row in table:
            print("   ".join(v.ljust(w) for v, w in zip(row, widths)) + "   " + row[5])
    else:
        raise UsageError(f"--format: {o.format!r} is not table or json")


@command("ID [SIGNAL]", Opt("all a", help="signal every process of the container"))
def kill(rt, o, args):
    """Send SIGNAL (a name or number, default SIGTERM) to the container's init."""
    cid = need_id(args, "kill", extra=1)
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    data, status = rt.read(cid)
    if status == STOPPED:
        raise LibcontainerError("container not running")
    if o.all or status == PAUSED:
        from libcontainer.container import DESTROY_HOOKS
        rt.hooks = DESTROY_HOOKS
        container = rt.load(cid)
        container.signal(sig, all=o.all)
        if status == PAUSED and sig == signal.SIGKILL:
            container.resume()      # a frozen process dies only once thawed (v1)
        return
    try:
        os.kill(data["init_pid"], sig)
    except ProcessLookupError:
        raise LibcontainerError("container not running") from None


@command("ID")
def start(rt, o, args):
    """Start a created container: its init runs the process of config.json."""
    cid = need_id(args, "start")
    rt.hooks = ["libcontainer_post_start"]
    container = rt.load(cid)
    status = container.status()
    if status == STOPPED:
        raise LibcontainerError("cannot start a container that has stopped")
    if status != CREATED:
        raise LibcontainerError(f"cannot start an already {status} container")
    _release(container)


def _release(container):
    """Let the held init exec; if a poststart hook fails, kill it (as runc)."""
    try:
        container.exec()
    except BaseException:
        if container.status() == RUNNING:
            os.kill(container.init_pid, signal.SIGKILL)
        raise


# --------------------------------------------------------------------------
# creating
# --------------------------------------------------------------------------

_CREATE_OPTS = (
    Opt("bundle b", "value", None, "the bundle directory (default: the current one)", "DIR"),
    Opt("pid-file", "value", None, "write the init's pid to FILE", "FILE"),
    Opt("console-socket", "value", None, "send the pty master to this AF_UNIX socket",
        "PATH"),
    Opt("no-pivot", help="chroot instead of pivot_root (for a rootfs on a ramdisk)"),
    Opt("no-new-keyring", help="accepted: no session keyring is made anyway"),
    Opt("preserve-fds", "value", "0", "pass N more fds (3, 4, ...) to the init", "N"),
)


@command("ID", *_CREATE_OPTS)
def create(rt, o, args):
    """Create a container from a bundle; its init waits for 'start'."""
    cid = need_id(args, "create")
    container, process = _create(rt, cid, o, detached=True)
    log.debug("container created", id=cid, pid=process.pid)


@command("ID", *_CREATE_OPTS,
         Opt("detach d", help="return once the container runs"),
         Opt("keep", help="do not delete the container after it exits"),
         Opt("no-subreaper", help="accepted: the init is a direct child anyway"))
def run(rt, o, args):
    """Create and start a container; wait for it unless --detach."""
    cid = need_id(args, "run")
    container, process = _create(rt, cid, o, detached=o.detach)
    if not o.detach:
        _forward_to(process)     # before the program runs: it may be quick
    try:
        _release(container)
    except BaseException:
        container.destroy()
        raise
    if o.detach:
        return 0
    return _attend(process, cleanup=None if o.keep else container.destroy)


def _create(rt, cid, o, detached):
    from libcontainer import specconv
    bundle = os.path.abspath(o.bundle or ".")
    spec = specconv.load_spec(bundle)
    config = specconv.to_config(spec, bundle, cid, systemd_cgroup=rt.systemd)
    if "process" not in spec:
        raise LibcontainerError("config.json: process: is required to create a container")
    process = specconv.to_process(spec["process"])
    _check_console(process.tty, o.console_socket, detached)
    _terminal_size(process, o.console_socket)
    config.no_pivot_root = o.no_pivot
    process.extra_fds, process.env = _passed_fds(o.preserve_fds, process.env)
    if rt.systemd:
        drivers = rt.factory.plugin_manager.registry.names("cgroup_driver")
        if "systemd" not in drivers:
            raise LibcontainerError(f"--systemd-cgroup: no systemd cgroup driver is available "
                                    f"(available: {', '.join(drivers) or 'none'})")
    container = rt.factory.create(cid, config)
    container.state["oci"] = {"bundle": bundle, "owner": _owner(),
                              "process": spec["process"]}
    container.state["created"] = _now()
    try:
        container.save()
        container.start(process, hold=True)
        if process.tty:
            _hand_over_console(process, o.console_socket)
        _write_pid_file(o.pid_file, process.pid)
    except BaseException:
        container.destroy()
        raise
    return container, process


def _terminal_size(process, console_socket):
    """An attached terminal: the pty starts with our size (before exec)."""
    if process.tty and not console_socket and process.console_size is None:
        from .console import terminal_size
        process.console_size = terminal_size(0)


def _check_console(tty, console_socket, detached):
    if tty and detached and not console_socket:
        raise UsageError("cannot allocate a tty for a detached container without "
                         "--console-socket")
    if console_socket and not tty:
        raise UsageError("--console-socket needs process.terminal (or --tty) to be set")


def _passed_fds(preserve, env):
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


def _hand_over_console(process, console_socket):
    """Send the pty master to --console-socket (SCM_RIGHTS, as runc), or
    keep it for _attend to copy."""
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


def _write_pid_file(path, pid):
    """Atomically, as containerd reads it as soon as we exit."""
    if not path:
        return
    path = os.path.abspath(path)
    tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{os.getpid()}")
    with open(tmp, "w") as f:
        f.write(str(pid))
    os.replace(tmp, path)


def _owner():
    import pwd
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def _now():
    import time
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + \
        f".{ns % 10**9:09d}Z"


def _forward_to(process):
    """Forward the usual signals to `process` (SIGWINCH too, unless it has a
    terminal: then its size follows ours)."""
    from .common import FORWARDED
    signals = [s for s in FORWARDED if not (process.tty and s == signal.SIGWINCH)]
    forward_signals(lambda: process.pid if process.returncode is None else 0, signals)


def _attend(process, cleanup=None):
    """Wait for an attached process (copying its terminal if it has one);
    its exit status, 128+signal when killed."""
    _forward_to(process)
    try:
        if process.console_fd is not None:
            from .console import relay
            master, process.console_fd = process.console_fd, None
            return relay(master, process)
        return process.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        if cleanup is not None:
            cleanup()


# --------------------------------------------------------------------------
# more processes
# --------------------------------------------------------------------------

@command("ID [COMMAND [ARG...]]",
         Opt("process p", "value", None, "an OCI process JSON file (- for stdin)", "FILE"),
         Opt("console-socket", "value", None, "send the pty master to this socket", "PATH"),
         Opt("tty t", help="allocate a pseudo-terminal"),
         Opt("detach d", help="do not wait for the process"),
         Opt("pid-file", "value", None, "write the process's pid to FILE", "FILE"),
         Opt("cwd", "value", None, "working directory in the container", "DIR"),
         Opt("env e", "multi", None, "KEY=VALUE to add to the environment (repeatable)"),
         Opt("user u", "value", None, "UID[:GID] to run as", "UID[:GID]"),
         Opt("additional-gids g", "multi", None, "another group id (repeatable)", "GID"),
         Opt("cap c", "multi", None, "add a capability (repeatable)", "CAP"),
         Opt("no-new-privs", help="set no_new_privs for the process"),
         Opt("apparmor", "value", None, "accepted: the container's profile applies"),
         Opt("process-label", "value", None, "accepted: the container's label applies"),
         Opt("preserve-fds", "value", "0", "pass N more fds (3, 4, ...)", "N"),
         Opt("ignore-paused", help="exec even if the container is paused"),
         Opt("cgroup", "multi", None, "accepted and ignored: the container's cgroup is used"),
         stop_after=1)
def exec_(rt, o, args):
    """Run a further process in a running container."""
    from libcontainer import specconv
    if not args:
        raise UsageError("exec: missing the container id")
    cid, cmd = args[0], args[1:]
    container = rt.load(cid)
    status = container.status()
    if status == STOPPED:
        raise LibcontainerError("cannot exec in a stopped container")
    if status == PAUSED and not o.ignore_paused:
        raise LibcontainerError("cannot exec in a paused container")
    if o.process:
        source = "process.json" if o.process == "-" else os.path.basename(o.process)
        spec = _read_json(o.process, source)
        process = specconv.to_process(spec, source=source, path="process")
    else:
        if not cmd:
            raise UsageError("exec: missing the command (or --process FILE)")
        process = specconv.to_process(_exec_spec(container, cmd, o), source="exec")
    _check_console(process.tty, o.console_socket, o.detach)
    _terminal_size(process, o.console_socket)
    process.extra_fds, process.env = _passed_fds(o.preserve_fds, process.env)
    if not o.detach:
        _forward_to(process)
    container.run(process)
    try:
        if process.tty:
            _hand_over_console(process, o.console_socket)
        _write_pid_file(o.pid_file, process.pid)
    except BaseException:
        process.signal(signal.SIGKILL)
        raise
    if o.detach:
        return 0
    return _attend(process)


def _exec_spec(container, cmd, o):
    """The init's OCI process with the command line's changes (as runc)."""
    import copy
    p = copy.deepcopy((container.state.get("oci") or {}).get("process") or {})
    p["args"] = list(cmd)
    p["terminal"] = o.tty
    if o.cwd:
        p["cwd"] = o.cwd
    for e in o.env:
        if "=" not in e:
            raise UsageError(f"--env: {e!r} is not KEY=VALUE")
    p["env"] = list(p.get("env") or []) + list(o.env)
    user = dict(p.get("user") or {})
    if o.user:
        uid, _, gid = o.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise UsageError(f"--user: {o.user!r} is not UID[:GID]")
        user = {"uid": int(uid), "gid": int(gid or 0)}
    if o.additional_gids:
        if not all(g.isdigit() for g in o.additional_gids):
            raise UsageError("--additional-gids: expected numbers")
        user["additionalGids"] = [int(g) for g in o.additional_gids]
    p["user"] = user
    if o.cap:
        caps = p.setdefault("capabilities", {})
        for name in ("bounding", "effective", "permitted", "ambient", "inheritable"):
            caps[name] = list(caps.get(name) or []) + list(o.cap)
    if o.no_new_privs:
        p["noNewPrivileges"] = True
    return p


def _read_json(path, source):
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise LibcontainerError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise LibcontainerError(f"{source}: not valid JSON: {e}") from None


@command("ID [PS OPTIONS...]", Opt("format f", "value", "table", "table or json", "FORMAT"),
         stop_after=1)
def ps(rt, o, args):
    """List the container's processes: ps(1) output, or a JSON array of pids."""
    if not args:
        raise UsageError("ps: missing the container id")
    pids = rt.load(args[0]).processes()
    if o.format == "json":
        print(json.dumps(pids, separators=(",", ":")))
        return
    if o.format != "table":
        raise UsageError(f"--format: {o.format!r} is not table or json")
    import subprocess
    out = subprocess.run(["ps", *(args[1:] or ["-ef"])], capture_output=True, text=True)
    if out.returncode != 0:
        raise LibcontainerError(f"ps: {out.stderr.strip() or f'exit status {out.returncode}'}")
    lines = out.stdout.splitlines()
    header = lines[0].split() if lines else []
    if "PID" not in header:
        raise LibcontainerError("couldn't find PID field in ps output")
    column = header.index("PID")
    print(lines[0])
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > column and fields[column].isdigit() and int(fields[column]) in wanted:
            print(line)


# --------------------------------------------------------------------------
# operating on it
# --------------------------------------------------------------------------

@command("ID", Opt("force f", help="kill a running container first"))
def delete(rt, o, args):
    """Delete a container and everything made for it."""
    cid = need_id(args, "delete")
    from libcontainer.container import DESTROY_HOOKS
    rt.hooks = DESTROY_HOOKS
    try:
        container = rt.load(cid)
    except ContainerNotExists:
        _remove_leftover(rt, cid)
        if o.force:
            return
        raise
    except LibcontainerError:
        if not o.force:
            raise
        _remove_leftover(rt, cid)
        return
    status = container.status()
    if status not in (STOPPED, CREATED) and not o.force:
        raise LibcontainerError(f"cannot delete container {cid} that is not stopped: {status}")
    container.destroy()


def _remove_leftover(rt, cid):
    """A state dir without a readable state.json (an interrupted create, a
    corrupt file)."""
    if os.path.isdir(rt.state_dir(cid)):
        rt.factory.remove(cid)


@command("ID")
def pause(rt, o, args):
    """Freeze every process of the container."""
    rt.load(need_id(args, "pause")).pause()


@command("ID")
def resume(rt, o, args):
    """Thaw a paused container."""
    rt.load(need_id(args, "resume")).resume()


_UPDATE_FLAGS = (  # flag, Resources field, kind
    ("blkio-weight", "blkio_weight", int), ("cpu-period", "cpu_period", int),
    ("cpu-quota", "cpu_quota", int), ("cpu-share", "cpu_shares", int),
    ("cpuset-cpus", "cpuset_cpus", str), ("cpuset-mems", "cpuset_mems", str),
    ("kernel-memory", "kernel_memory", "bytes"), ("memory", "memory", "bytes"),
    ("memory-reservation", "memory_reservation", "bytes"),
    ("memory-swap", "memory_swap", "bytes"), ("pids-limit", "pids_limit", int),
)


@command("ID",
         Opt("resources r", "value", None, "an OCI LinuxResources JSON file (- for stdin)",
             "FILE"),
         *(Opt(flag, "value", None, f"set {field}", "VALUE") for flag, field, _ in _UPDATE_FLAGS),
         Opt("cpu-rt-period", "value", None, "not supported"),
         Opt("cpu-rt-runtime", "value", None, "not supported"),
         Opt("kernel-memory-tcp", "value", None, "not supported"),
         Opt("l3-cache-schema", "value", None, "not supported"),
         Opt("mem-bw-schema", "value", None, "not supported"))
def update(rt, o, args):
    """Change the resource limits of a running container."""
    from libcontainer import specconv
    cid = need_id(args, "update")
    for flag in ("cpu_rt_period", "cpu_rt_runtime", "kernel_memory_tcp", "l3_cache_schema",
                 "mem_bw_schema"):
        if getattr(o, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')}: not supported by {PROG}")
    container = rt.load(cid)
    if container.config.cgroups is None:
        raise LibcontainerError(f"container {cid} has no cgroup to update")
    resources = container.config.cgroups.resources
    if o.resources:
        source = "resources" if o.resources == "-" else os.path.basename(o.resources)
        resources = specconv.to_resources(_read_json(o.resources, source), base=resources,
                                          source=source, path="resources")
    else:
        import copy
        resources = copy.deepcopy(resources)
    for flag, field, kind in _UPDATE_FLAGS:
        value = getattr(o, flag.replace("-", "_"))
        if value is not None:
            setattr(resources, field, _update_value(flag, value, kind))
    container.set(resources)


def _update_value(flag, value, kind):
    if kind is str:
        return value
    try:
        return parse_bytes(value) if kind == "bytes" else int(value)
    except ValueError:
        raise UsageError(f"--{flag}: invalid value {value!r}") from None


_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def parse_bytes(text):
    """'50M', '1g', '512k', '1024', '-1' -> bytes (binary units, as runc)."""
    s = text.strip().lower()
    if s == "-1":
        return -1
    for suffix in ("ib", "b"):
        if s.endswith(suffix) and len(s) > len(suffix) and s[-len(suffix) - 1].isalpha():
            s = s[:-len(suffix)]
            break
    unit = s[-1] if s and s[-1].isalpha() else ""
    number = s[:-1] if unit else s
    if unit not in _UNITS or not number:
        raise ValueError(text)
    value = float(number) * _UNITS[unit]
    if value < 0:
        raise ValueError(text)
    return int(value)


@command("ID", Opt("stats", help="print the statistics once and exit"),
         Opt("interval", "value", "5s", "time between statistics (5s, 500ms, 1m)", "DURATION"))
def events(rt, o, args):
    """Print the container's resource statistics as JSON records."""
    import time
    cid = need_id(args, "events")
    interval = parse_duration(o.interval)
    container = rt.load(cid)
    while True:
        if container.status() == STOPPED:
            if o.stats:
                raise LibcontainerError("container not running")
            return 0
        record = {"type": "stats", "id": cid, "data": runc_stats(container.stats())}
        print(json.dumps(record, separators=(",", ":")), flush=True)
        if o.stats:
            return 0
        time.sleep(interval)


def parse_duration(text):
    """'5s', '500ms', '1m', '2' (seconds) -> seconds, as Go durations."""
    import re
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)?", text.strip())
    if not m or float(m[1]) <= 0:
        raise UsageError(f"--interval: invalid duration {text!r}")
    return float(m[1]) * {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}[m[2]]


def runc_stats(s):
    """The cgroups plugin's statistics in the shape of runc's events JSON."""
    cpu, mem = s.get("cpu") or {}, s.get("memory") or {}
    pids, blkio = s.get("pids") or {}, s.get("blkio") or {}

    def entry(usage, limit, max_usage=None, failcnt=0):
        return {"limit": limit or 0, "usage": usage or 0, "max": max_usage or 0,
                "failcnt": failcnt or 0}
    out = {
        "cpu": {"usage": {"total": cpu.get("usage_ns", 0), "percpu": cpu.get("per_cpu_ns", []),
                          "kernel": cpu.get("system_ns", 0), "user": cpu.get("user_ns", 0)},
                "throttling": {"periods": cpu.get("periods", 0),
                               "throttledPeriods": cpu.get("throttled_periods", 0),
                               "throttledTime": cpu.get("throttled_ns", 0)}},
        "memory": {"cache": mem.get("cache", 0),
                   "usage": entry(mem.get("usage"), mem.get("limit"), mem.get("max_usage"),
                                  mem.get("failcnt")),
                   "swap": entry(mem.get("swap_usage"), mem.get("swap_limit")),
                   "raw": {"rss": mem.get("rss", 0), "oom_kill": mem.get("oom_kills", 0)}},
        "pids": {"current": pids.get("current", 0), "limit": pids.get("limit") or 0},
        "blkio": {
            "ioServiceBytesRecursive": [
                {"major": d["major"], "minor": d["minor"], "op": op.title(), "value": d[key]}
                for d in blkio.get("devices", [])
                for op, key in (("read", "read_bytes"), ("write", "write_bytes"))],
            "ioServicedRecursive": [
                {"major": d["major"], "minor": d["minor"], "op": op.title(), "value": d[key]}
                for d in blkio.get("devices", [])
                for op, key in (("read", "read_ops"), ("write", "write_ops"))]},
        "hugetlb": s.get("hugetlb") or {},
    }
    if "network" in s:
        out["network_interfaces"] = s["network"]
    return out


# --------------------------------------------------------------------------
# about the runtime
# --------------------------------------------------------------------------

@command("", Opt("bundle b", "value", None, "where to write config.json (default: here)",
                 "DIR"),
         Opt("rootless", help="a spec for a container run by an unprivileged user"))
def spec(rt, o, args):
    """Write a default config.json to start a bundle from."""
    from libcontainer import specconv
    if args:
        raise UsageError(f"spec: unexpected arguments: {' '.join(args)}")
    path = os.path.join(o.bundle or ".", "config.json")
    if os.path.exists(path):
        raise LibcontainerError(f"{path} exists: remove it first")
    with open(path, "x") as f:
        json.dump(specconv.default_spec(rootless=o.rootless), f, indent="\t")
        f.write("\n")


@command("")
def features(rt, o, args):
    """Print what this runtime supports, as runtime-spec features.md JSON."""
    import libcontainer
    from libcontainer import specconv
    from libcontainer.linux import caps
    pm = rt.factory.plugin_manager
    loaded = {entry["name"] for entry, hooks in pm.plugins() if hooks is not None}
    drivers = pm.registry.names("cgroup_driver")
    seccomp = {"enabled": "seccomp" in loaded}
    try:
        from libcontainer.linux import seccomp as sc
        if seccomp["enabled"]:
            seccomp.update(actions=sorted(sc.ACTIONS), operators=sorted(sc.OPS),
                           supportedFlags=sorted(sc.FLAGS))
    except Exception:     # no libseccomp: the plugin will say so when used
        pass
    out = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(specconv.HOOKS) if "oci_hooks" in loaded else [],
        "mountOptions": sorted(specconv.MOUNT_FLAGS | specconv.PROPAGATION),
        "linux": {
            "namespaces": sorted(specconv.NAMESPACES),
            "capabilities": ["CAP_" + n for n in caps.NAMES],
            "cgroup": {"v1": "v1" in drivers, "v2": "v2" in drivers,
                       "systemd": "systemd" in drivers, "systemdUser": False, "rdma": False},
            "seccomp": seccomp,
            "apparmor": {"enabled": "apparmor" in loaded},
            "selinux": {"enabled": "selinux" in loaded},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.pyrunc.version": libcontainer.__version__},
    }
    print(json.dumps(out, indent=4))


@command("[COMMAND]")
def help_(rt, o, args):
    """Show the commands, or one command's options."""
    if args and args[0] in COMMANDS:
        print(command_help(COMMANDS[args[0]]))
    else:
        print(usage_text())


@command("ID")
def checkpoint(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("checkpoint is not supported by pyrunc")


@command("ID")
def restore(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("restore is not supported by pyrunc")


# --------------------------------------------------------------------------

def cli(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        code = main(argv)
    except LibcontainerError as e:
        fail(PROG, str(e), 1)
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

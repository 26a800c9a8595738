"""nsinit: run a container from container.json, join it, inspect it."""
import json
import os
import signal
import sys

import click

import libcontainer
from libcontainer import log
from libcontainer.container import DESTROY_HOOKS
from libcontainer.errors import ContainerNotExists, InvalidState, LibcontainerError

from .common import FORWARDED, forward_signals, parse_signal, run_cli

def default_root():
    """/run/libcontainer for root; a per-user directory otherwise."""
    if os.geteuid() == 0:
        return "/run/libcontainer"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir and os.access(runtime_dir, os.W_OK):
        return os.path.join(runtime_dir, "libcontainer")
    return f"/tmp/libcontainer-{os.geteuid()}"


class Ctx:
    def __init__(self, root, disabled):
        self.root = root
        self.disabled = disabled
        self._factory = None

    @property
    def factory(self):
        if self._factory is None:
            self._factory = libcontainer.new(self.root, disabled=self.disabled)
        return self._factory

    def factory_for(self, hooks):
        """A factory whose plugin manager loads only plugins with these hooks."""
        return libcontainer.new(self.root, disabled=self.disabled, hooks=hooks)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--root", default=default_root, envvar="NSINIT_ROOT",
              help="Directory holding the containers' state [default: /run/libcontainer, "
                   "or $XDG_RUNTIME_DIR/libcontainer for other users].")
@click.option("--log-level", default="warning", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", default="text", type=click.Choice(["text", "json"]))
@click.option("--log", "log_file", default=None, help="Write logs to this file.")
@click.option("--disable-plugin", "disabled", multiple=True, metavar="NAME",
              help="Block a plugin (repeatable).")
@click.version_option(libcontainer.__version__, prog_name="nsinit")
@click.pass_context
def main(ctx, root, log_level, log_format, log_file, disabled):
    """Run Linux containers from a container.json."""
    log.configure(level=log_level, fmt=log_format, file=log_file)
    ctx.obj = Ctx(root, list(disabled))


def load_config(path):
    from libcontainer.configs import Config
    config = Config.load(path)
    if config.rootfs and not os.path.isabs(config.rootfs):
        # a relative rootfs is relative to the directory of container.json
        config.rootfs = os.path.join(os.path.dirname(os.path.abspath(path)), config.rootfs)
    return config


def default_id():
    name = os.path.basename(os.getcwd()) or "container"
    return "".join(c if c.isalnum() or c in "_.+-" else "-" for c in name).lstrip(".-") or "nsinit"


@main.command("exec", context_settings={"ignore_unknown_options": True,
                                        "allow_interspersed_args": False})
@click.option("--id", "cid", default=None, help="Container id [default: the directory's name].")
@click.option("--config", "config_path", default="container.json", show_default=True)
@click.option("--detach", "-d", is_flag=True, help="Start and return; the container keeps running.")
@click.option("--tty", "-t", is_flag=True, help="Give the process a terminal.")
@click.option("--user", "-u", default="", help="user[:group] inside the container.")
@click.option("--cwd", default=None, help="Working directory inside the container.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE (repeatable).")
@click.argument("cmd", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_obj
def exec_(obj, cid, config_path, detach, tty, user, cwd, env, cmd):
    """Run CMD in a new container, or in the running container ID."""
    cid = cid or default_id()
    if tty and detach:
        raise click.UsageError("--tty cannot be combined with --detach")
    factory = obj.factory
    try:
        container = factory.load(cid)
    except ContainerNotExists:
        container = None
    if container is not None:
        status = container.status()
        if status not in ("running", "created"):
            raise InvalidState(f"container {cid} exists but is {status}; "
                               f"'nsinit destroy {cid}' removes it")
        process = _process(container.config, cmd, user, cwd, env, tty)
        if not detach:
            _forward(process)
        container.run(process)
        sys.exit(_attend(process, detach, lambda: None))
    config = load_config(config_path)
    container = factory.create(cid, config)
    process = _process(config, cmd, user, cwd, env, tty)
    if not detach:      # before start: a signal during start must not kill us
        _forward(process)
    try:
        container.start(process)
    except BaseException:
        container.destroy()
        raise
    log.info("container started", id=cid, pid=process.pid)
    if detach:
        return
    sys.exit(_attend(process, False, container.destroy))


def _process(config, cmd, user, cwd, env, tty):
    merged = dict(e.split("=", 1) for e in config.env if "=" in e)
    for e in env:
        if "=" not in e:
            raise click.BadParameter(f"{e!r} is not KEY=VALUE", param_hint="--env")
        k, v = e.split("=", 1)
        merged[k] = v
    from .console import terminal_size
    return libcontainer.Process(args=list(cmd), env=[f"{k}={v}" for k, v in merged.items()],
                                user=user, cwd=cwd or "/", tty=tty,
                                console_size=terminal_size(0) if tty else None)


def _forward(process):
    signals = FORWARDED
    if process.tty:     # raw mode: ^C is a byte for the pty; SIGWINCH resizes it
        signals = [s for s in FORWARDED if s not in (signal.SIGINT, signal.SIGWINCH)]
    forward_signals(lambda: process.pid if process.returncode is None else 0, signals)


def _attend(process, detach, cleanup):
    """Forward signals to `process`, wait for it, clean up; its exit status."""
    if detach:
        return 0
    try:
        if process.tty:
            from .console import relay
            return relay(process.console_fd, process)
        return process.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)
        cleanup()


@main.command()
def config():
    """Print a complete sample container.json."""
    from libcontainer import sample
    click.echo(json.dumps(sample.config_dict(), indent=2))


@main.command()
@click.argument("cid", metavar="ID")
@click.pass_obj
def state(obj, cid):
    """Print the state of container ID as JSON."""
    container = obj.factory.load(cid)       # no plugins, no config parsing
    data = container.state
    out = {"id": cid, "status": container.status(), "pid": data.get("init_pid", 0),
           "created": data.get("created"), "rootfs": data.get("config", {}).get("rootfs"),
           "namespaces": data.get("namespaces", {})}
    click.echo(json.dumps(out, indent=2))


@main.command("list")
@click.option("--quiet", "-q", is_flag=True, help="Only ids.")
@click.pass_obj
def list_(obj, quiet):
    """List the containers under --root."""
    from libcontainer import state as st
    from libcontainer.stateroot import check_root
    check_root(obj.root)
    try:
        names = sorted(os.listdir(obj.root))
    except FileNotFoundError:
        names = []
    if not quiet:
        click.echo(f"{'ID':<24} {'PID':>8} {'STATUS':<10} CREATED")
    for name in names:
        state_dir = os.path.join(obj.root, name)
        try:
            data = st.read(state_dir)
        except (OSError, ValueError):
            continue
        if quiet:
            click.echo(name)
        else:
            click.echo(f"{name:<24} {data.get('init_pid', 0):>8} "
                       f"{st.status(data, state_dir):<10} {data.get('created') or ''}")


@main.command()
@click.argument("cid", metavar="ID")
@click.argument("sig", metavar="[SIGNAL]", default="SIGTERM")
@click.option("--all", "-a", "all_", is_flag=True, help="Signal every process.")
@click.pass_obj
def kill(obj, cid, sig, all_):
    """Send SIGNAL (default SIGTERM) to the init of container ID."""
    obj.factory_for(DESTROY_HOOKS).load(cid).signal(parse_signal(sig), all=all_)


@main.command()
@click.argument("cid", metavar="ID")
@click.option("--force", "-f", is_flag=True, help="Kill a running container first.")
@click.pass_obj
def destroy(obj, cid, force):
    """Remove container ID (and everything made for it)."""
    from libcontainer.factory import validate_id
    validate_id(cid)        # first: --force removes the directory it names
    try:
        container = obj.factory_for(DESTROY_HOOKS).load(cid)
        container.config    # parsed now, so that a corrupt one is handled here
    except ContainerNotExists:
        if not (force and os.path.isdir(os.path.join(obj.root, cid))):
            raise
        obj.factory.remove(cid)     # no state.json: a create killed early
        return
    except LibcontainerError:
        if not force:
            raise
        obj.factory.remove(cid)
        return
    status = container.status()
    if status not in ("stopped",) and not force:
        raise InvalidState(f"container {cid} is {status}: stop it or use --force")
    container.destroy()


@main.command()
@click.argument("cid", metavar="ID")
@click.pass_obj
def pause(obj, cid):
    """Freeze every process of container ID."""
    obj.factory.load(cid).pause()


@main.command()
@click.argument("cid", metavar="ID")
@click.pass_obj
def resume(obj, cid):
    """Thaw container ID."""
    obj.factory.load(cid).resume()


@main.command()
@click.argument("cid", metavar="ID")
@click.pass_obj
def ps(obj, cid):
    """List the host pids of the processes of container ID."""
    for pid in obj.factory.load(cid).processes():
        click.echo(pid)


@main.command()
@click.argument("cid", metavar="ID")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
def stats(obj, cid, as_json):
    """Print the resource usage of container ID."""
    data = obj.factory.load(cid).stats()
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    _print_tree(data, 0)


def _print_tree(data, depth):
    for key, value in sorted(data.items()):
        if isinstance(value, dict):
            click.echo(f"{'  ' * depth}{key}:")
            _print_tree(value, depth + 1)
        else:
            click.echo(f"{'  ' * depth}{key:<{30 - 2 * depth}} {value}")


@main.command()
@click.pass_obj
def plugins(obj):
    """List the plugins: name, version, distribution, hooks, enabled."""
    from libcontainer.plugin_manager import PluginManager
    pm = PluginManager(disabled=obj.disabled)
    click.echo(f"{'NAME':<16} {'VERSION':<10} {'DISTRIBUTION':<22} {'STATE':<9} HOOKS")
    for entry, hooks in pm.plugins():
        state = "disabled" if hooks is None else "enabled"
        short = ",".join(h[len("libcontainer_"):] for h in hooks or [])
        click.echo(f"{entry['name']:<16} {entry['version']:<10} {entry['dist']:<22} "
                   f"{state:<9} {short or '-'}")


def cli(argv=None):
    sys.exit(run_cli(main, "nsinit", argv))

"""The container's life: create, run, start, kill, delete, pause, resume."""
import os
from _signal import SIGKILL     # not signal: its enums cost kill ~4 ms

from libcontainer import log
from libcontainer.errors import ContainerNotExists, LibcontainerError

from .commandline import CREATED, PAUSED, RUNNING, STOPPED, Opt, command, need_id
from ..common import parse_signal
from .stdio import (attend, check_console, forward_to, hand_over_console, passed_fds,
                    send_pidfd, terminal_size_for, write_pid_file)


@command("ID [SIGNAL]", Opt("all a", help="signal every process of the container"))
def kill(rt, o, args):
    """Send SIGNAL (a name or number, default SIGTERM) to the container's init."""
    cid = need_id(args, "kill", extra=1)
    sig = parse_signal(args[1] if len(args) > 1 else "SIGTERM")
    data, status = rt.read(cid)
    if status == STOPPED and not o.all:     # --all: what its cgroup still holds
        raise LibcontainerError("container not running")
    if o.all or status == PAUSED:
        from libcontainer.container import DESTROY_HOOKS
        rt.hooks = DESTROY_HOOKS
        container = rt.load(cid)
        container.signal(sig, all=o.all)
        if status == PAUSED and sig == SIGKILL:
            container.resume()      # a frozen process dies only once thawed (v1)
        return
    try:
        os.kill(data["init_pid"], sig)
    except ProcessLookupError:
        raise LibcontainerError("container not running") from None
    except OSError as e:        # a number the kernel does not know
        raise LibcontainerError(f"unable to signal init: {e.strerror}") from None


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
    # load the plugins before the release, not after: containerd's shim
    # watches the container (its OOM events) only once `start` returned
    container.pm
    _release(container)


def _release(container):
    """Let the held init exec; if a poststart hook fails, kill it (as runc)."""
    try:
        container.exec()
    except BaseException:
        if container.status() == RUNNING:
            os.kill(container.init_pid, SIGKILL)
        raise


_CREATE_OPTS = (
    Opt("bundle b", "value", None, "the bundle directory (default: the current one)", "DIR"),
    Opt("pid-file", "value", None, "write the init's pid to FILE", "FILE"),
    Opt("console-socket", "value", None, "send the pty master to this AF_UNIX socket",
        "PATH"),
    Opt("no-pivot", help="chroot instead of pivot_root (for a rootfs on a ramdisk)"),
    Opt("no-new-keyring", help="keep the runtime's session keyring (default: a new one, "
        "_ses.ID)"),
    Opt("pidfd-socket", "value", None, "send a pidfd of the init to this AF_UNIX socket",
        "PATH"),
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
        forward_to(process)     # before the program runs: it may be quick
    try:
        _release(container)
    except BaseException:
        container.destroy()
        raise
    if o.detach:
        return 0
    return attend(process, cleanup=None if o.keep else container.destroy)


def _create(rt, cid, o, detached):
    from libcontainer import specconv
    bundle = os.path.abspath(o.bundle or ".")
    spec = specconv.load_spec(bundle)
    config = specconv.to_config(spec, bundle, cid, systemd_cgroup=rt.systemd)
    if "process" not in spec:
        raise LibcontainerError("config.json: process: is required to create a container")
    process = specconv.to_process(spec["process"])
    check_console(process.tty, o.console_socket, detached)
    terminal_size_for(process, o.console_socket)
    config.no_pivot_root = o.no_pivot
    config.no_new_keyring = o.no_new_keyring
    process.extra_fds, process.env = passed_fds(o.preserve_fds, process.env)
    container = rt.factory.create(cid, config)
    container.state["oci"] = {"bundle": bundle, "owner": _owner(),
                              "process": spec["process"]}
    container.state["created"] = _now()
    try:
        container.start(process, hold=True)     # saves them before anything is made
        if process.tty:
            hand_over_console(process, o.console_socket)
        send_pidfd(process.pid, o.pidfd_socket)
        write_pid_file(o.pid_file, process.pid)
    except BaseException:
        container.destroy()
        raise
    return container, process




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

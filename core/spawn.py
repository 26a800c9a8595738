"""Forking a process into a container, and the parent <-> child protocol.

One fork per process. For a new PID namespace the parent switches its own
``pid_for_children`` (``unshare(CLONE_NEWPID)``, or ``setns`` into the
init's namespace for a joined process), forks, and switches back: the child
is born inside the namespace -- PID 1 for an init -- and stays the parent's
direct child, so it can be waited for. That needs a single-threaded parent.

Messages over a SOCK_SEQPACKET socketpair (one JSON object per packet):

    parent                               child
   [user namespace: an intermediate child unshares NEWUSER, asks for its id
    maps (map_ids), unshares NEWPID and clones the init with CLONE_PARENT,
    reports its pid and exits: {"userns"} → {"mapped"} → {"init_pid"} →
    {"continue"}; the init then starts the table below]
    fork  ───────────────────────────▶  enter_namespaces
          ◀─────────────── {"ns": 1}    (or {"error": ...} and exit)
    post_clone (cgroup, id maps, net)
          {"go": 1} ───────────────▶
                                         finish_namespaces (cgroup ns)
                                         init: mounts → devices
          ◀────────── {"mounted": 1}
    runtime_ready (OCI prestart hooks)
          {"resume": 1} ───────────▶
                                         init: rootfs_ready → enter_rootfs → environment
                                         limits → identity → privileges
                                         exec check; stdio installed (the pty
                                         slave with tty=True), every other fd
                                         of the runtime closed
          ◀──────────── {"ready": 1}
          (with tty=True the pty master travels with "ready", SCM_RIGHTS)
                                         [held: blocks on exec.fifo until start]
                                         seal → pre_exec → exec check → execve
          ◀──── EOF (the socket is close-on-exec)  or  {"error": ...}
    post_start

A held init outlives its creator. `start` opens exec.fifo for reading, which
releases the init's blocking open for writing; the init writes "0", then
either execs (the fifo is close-on-exec: EOF) or writes its error message and
exits: `start` reads until EOF and reports what came after "0".
"""
import errno
import fcntl
import json
import os
import signal
import socket
import struct
import sys
import termios

from . import execguard, log, procself, state
from .faults import crash_point
from .errors import LibcontainerError, SetupError
from .linux import misc
from .linux.clone import fork_sibling
from .linux.namespaces import CLONE, setns, unshare

_PROCESS = ("setup_limits", "setup_identity", "setup_privileges")
INIT_PHASES = ("finish_namespaces", "setup_mounts", "setup_devices", "rootfs_ready", "enter_rootfs",
               "setup_environment", *_PROCESS)
JOIN_PHASES = ("finish_namespaces", *_PROCESS)


class Channel:
    def __init__(self, sock):
        self.sock = sock

    def send(self, fds=(), **msg):
        try:
            socket.send_fds(self.sock, [json.dumps(msg).encode()], list(fds))
        except OSError:
            pass    # the other side is gone; its exit tells the story

    def recv(self):
        """The next message, or None at EOF. File descriptors sent with it
        are in msg["fds"]."""
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
                break
            except InterruptedError:
                continue
        if not data:
            for fd in fds:
                os.close(fd)
            return None
        msg = json.loads(data)
        msg["fds"] = fds
        return msg


def describe(exc):
    """One line for an exception raised during setup."""
    if isinstance(exc, OSError) and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc) or type(exc).__name__


def _check_single_threaded():
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        raise LibcontainerError("starting a container needs a single-threaded process "
                                f"({threading.active_count()} threads are running)")


class _PidNsForChildren:
    """Make the next fork land in a new (or the given) PID namespace."""

    def __init__(self, new=False, path=None):
        self.new, self.path = new, path
        self.own = None

    def __enter__(self):
        if self.new or self.path:
            self.own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
            if self.path:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    setns(fd, CLONE.NEWPID, self.path)
                finally:
                    os.close(fd)
            else:
                unshare(CLONE.NEWPID)
        return self

    def __exit__(self, *exc):
        self.restore()

    def restore(self):
        if self.own is not None:
            setns(self.own, CLONE.NEWPID, "/proc/self/ns/pid")
            os.close(self.own)
            self.own = None


def spawn(container, process, pm, hold_fd=None, on_fork=None):
    """Fork `process` into `container`; return once the child has exec'd (or,
    with `hold_fd`, once it waits for start). Raises SetupError with the
    child's message if any phase failed; the child is reaped then."""
    _check_single_threaded()
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    if process.init:
        ns = container.config.namespace("NEWPID")
        pid_target = (ns.path or "new") if ns else None
        ns = container.config.namespace("NEWUSER")
        userns = (ns.path or "new") if ns else None
    else:
        init_pid = container.state["init_pid"]
        pid_target = f"/proc/{init_pid}/ns/pid" if container.config.has_namespace("NEWPID") else None
        userns = container.state.get("namespaces", {}).get("NEWUSER")
    pidns = _PidNsForChildren(new=pid_target == "new",
                              path=pid_target if pid_target != "new" else None)
    # CVE-2019-5736: the child inherits "not dumpable" and keeps it until
    # execve, so the container's processes cannot open its /proc/PID/exe
    # (the host's interpreter) nor its fds, even in the instant after fork
    dumpable = misc.prctl(misc.PR_GET_DUMPABLE)
    misc.prctl(misc.PR_SET_DUMPABLE, 0)
    # born with a name that shows it is not exec'd yet (for ps; never trusted)
    with open("/proc/self/comm") as f:
        own_name = f.read().rstrip("\n")
    misc.set_name(state.SETUP_NAME)
    try:
        if userns is None:
            with pidns:
                pid = os.fork()
                if pid == 0:
                    _child(container, process, pm, Channel(child_sock), parent_sock, hold_fd)
        else:
            pid = os.fork()
            if pid == 0:
                _intermediate(container, process, pm, Channel(child_sock), parent_sock, hold_fd,
                              userns, pid_target)
    finally:
        misc.prctl(misc.PR_SET_DUMPABLE, dumpable)
        misc.set_name(own_name)
    child_sock.close()
    chan = Channel(parent_sock)
    try:
        if userns is not None:
            pid = _through_intermediate(chan, pid, container, process, pm)
        process.pid = pid
        if on_fork is not None:
            on_fork(pid)
        msg = _expect(chan, "ns", pid)
        crash_point("post_clone:parent")
        pm.hook.libcontainer_post_clone(container=container, process=process, pid=pid)
        chan.send(go=1)
        if process.init:
            _expect(chan, "mounted", pid)
            pm.hook.libcontainer_runtime_ready(container=container, process=process, pid=pid)
            chan.send(resume=1)
        msg = _expect(chan, "ready", pid)
        if msg["fds"]:
            process.console_fd = msg["fds"][0]
        if hold_fd is None:
            msg = chan.recv()
            if msg is not None:
                raise SetupError(msg.get("error", f"unexpected message {msg}"))
    except BaseException:
        _kill_and_reap(pid)
        raise
    finally:
        parent_sock.close()
    return pid


def _through_intermediate(chan, pid, container, process, pm):
    """The user-namespace path: the intermediate creates (or joins) the user
    namespace, waits for its id maps, and clones the init as our child."""
    msg = chan.recv()
    if msg is not None and "userns" in msg:
        crash_point("map_ids:parent")
        pm.hook.libcontainer_map_ids(container=container, process=process, pid=pid)
        chan.send(mapped=1)
        msg = chan.recv()
    if msg is None or "init_pid" not in msg:
        raise SetupError((msg or {}).get("error", f"intermediate process {pid} exited during setup"))
    os.waitpid(pid, 0)
    chan.send(**{"continue": 1})
    return msg["init_pid"]


def _intermediate(container, process, pm, chan, other_end, hold_fd, userns, pid_target):
    """Enter the user namespace, then clone the init into the PID namespace
    so that it is born there as a child of the runtime. Never returns."""
    try:
        other_end.close()
        misc.prctl(misc.PR_SET_PDEATHSIG, signal.SIGKILL)
        if userns == "new":
            # dumpable while the parent writes our maps: an unprivileged
            # parent cannot open /proc/PID/uid_map of a non-dumpable process.
            # No process of the container exists yet to abuse it.
            misc.prctl(misc.PR_SET_DUMPABLE, 1)
            unshare(CLONE.NEWUSER)
            chan.send(userns=1)
            msg = chan.recv()
            misc.prctl(misc.PR_SET_DUMPABLE, 0)
            if not msg or "mapped" not in msg:
                os._exit(1)
            # become the namespace's root: our host uid is not mapped
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        else:
            _setns_path(userns, CLONE.NEWUSER)
        if pid_target == "new":
            unshare(CLONE.NEWPID)
        elif pid_target:
            _setns_path(pid_target, CLONE.NEWPID)
        pid = fork_sibling()
        if pid == 0:
            msg = chan.recv()       # the parent has our pid now
            if msg and "continue" in msg:
                _child(container, process, pm, chan, None, hold_fd)
            os._exit(1)
        chan.send(init_pid=pid)
        os._exit(0)
    except BaseException as e:
        chan.send(error=f"user namespace: {describe(e)}")
    finally:
        os._exit(1)


def _setns_path(path, nstype):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, nstype, path)
    finally:
        os.close(fd)


def _expect(chan, key, pid):
    msg = chan.recv()
    if msg is None:
        raise SetupError(f"container init (pid {pid}) exited during setup")
    if key not in msg:
        raise SetupError(msg.get("error", f"unexpected message {msg}"))
    return msg


def _kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass


# --------------------------------------------------------------------------
# the child: never returns
# --------------------------------------------------------------------------

def _child(container, process, pm, chan, other_end, hold_fd):
    code = 1
    phase = "enter_namespaces"
    report = chan.send      # where an error goes: the creator, or `start` (the fifo)
    try:
        if other_end is not None:
            other_end.close()
        # our own /proc/PID while /proc is the host's: after pivot_root it may
        # be the image's files (the exec fifo, mountinfo, oom_score_adj)
        pinned = procself.pin()
        # Die with the parent while setting up, so a killed runtime leaves no
        # half-made container behind; cleared just before exec.
        misc.prctl(misc.PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        hook = pm.hook
        crash_point(phase)
        hook.libcontainer_enter_namespaces(container=container, process=process)
        mntns = container.config.namespace("NEWNS")
        if process.init and mntns is not None and not mntns.path:
            pinned = procself.repin()   # a clone, now that the mount namespace is ours
        chan.send(ns=1)
        msg = chan.recv()
        if not msg or "go" not in msg:
            os._exit(1)
        for phase in INIT_PHASES if process.init else JOIN_PHASES:
            crash_point(phase)
            if phase == "rootfs_ready":
                # the parent's runtime_ready (OCI prestart hooks) sees the mounts
                chan.send(mounted=1)
                msg = chan.recv()
                if not msg or "resume" not in msg:
                    os._exit(1)
            getattr(hook, "libcontainer_" + phase)(container=container, process=process)
        phase = "prepare_exec"
        env = dict(e.split("=", 1) for e in process.env if "=" in e)
        execguard.check(process.args[0], env, must_exist=True)
        stdio, console = _terminal(process) if process.tty else (process.stdio_fds(), [])
        if hold_fd is not None:
            _probe_fifo(hold_fd)
        # from here on the process owns its stdio (the pty slave), its extra
        # fds, and of the runtime's only these: a held init keeps nothing of
        # its creator's open while it waits (`out=$(pyrunc create ...)`)
        n = len(stdio) + len(process.extra_fds)
        chan.sock = socket.socket(fileno=_above(chan.sock.detach(), n))
        console = [_above(fd, n) for fd in console]
        if hold_fd is not None:
            hold_fd = _above(hold_fd, n)
        pinned = procself.pin(_above(pinned, n))
        _install_stdio(stdio, process.extra_fds,
                       keep=[chan.sock.fileno(), *console, hold_fd, pinned])
        # the runtime's log file is closed now and its fd number may be
        # reused (by the exec fifo): no record from here on
        log.configure(level="critical")
        if hold_fd is not None:
            # the creator exits now; the init outlives it, waiting for start
            misc.prctl(misc.PR_SET_PDEATHSIG, 0)
            misc.set_name(state.HELD_NAME)
        chan.send(ready=1, fds=console)
        for fd in console:
            os.close(fd)
        if hold_fd is not None:
            chan.sock.close()       # the creator has gone: nobody reads it
            # reopened through our pinned /proc: the fifo's host path is not
            # visible here. `start` reads until EOF (our exec), or our error after "0"
            fifo = procself.open_self(f"fd/{hold_fd}", os.O_WRONLY)
            os.close(hold_fd)
            os.write(fifo, b"0")
            report = _fifo_reporter(fifo)
        phase = "seal"
        misc.prctl(misc.PR_SET_PDEATHSIG, 0)
        hook.libcontainer_seal(container=container, process=process)
        # after the seal: OCI startContainer hooks run confined as the program
        phase = "pre_exec"
        hook.libcontainer_pre_exec(container=container, process=process)
        phase = "exec"
        execguard.check(process.args[0], env)   # a hook may have swapped it
        procself.unpin()
        try:
            _execvpe(process.args, env)
        except OSError as e:
            code = 127 if e.errno == 2 else 126
            raise SetupError(f"exec {process.args[0]!r}: {e.strerror}") from None
    except BaseException as e:
        msg = describe(e) if isinstance(e, SetupError) else f"{phase}: {describe(e)}"
        report(error=msg)
    finally:
        os._exit(code)


def _execvpe(args, env):
    """os.execvpe without os.get_exec_path, whose warnings.catch_warnings
    dirties pages charged to the container: each PATH entry in turn, the
    first error other than a missing file raised."""
    if "/" in args[0]:
        os.execve(args[0], args, env)
    first = last = None
    for d in env.get("PATH", os.defpath).split(os.pathsep):
        try:
            os.execve(os.path.join(d, args[0]), args, env)
        except (FileNotFoundError, NotADirectoryError) as e:
            last = e
        except OSError as e:
            last = e
            first = first or e
    raise first or last


def _terminal(process):
    """A pty of the container's own devpts, the slave our controlling
    terminal: (stdio, [master]). The master goes to the parent."""
    master, slave = process.pty or os.openpty()    # the console plugin's, bound on /dev/console
    if process.console_size:
        # before exec: the program may ask for its size at once
        rows, cols = process.console_size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.setsid()
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    return [slave] * 3, [master]


def _probe_fifo(fd):
    """Fail now, while the creator listens, if we could not open the exec
    fifo for writing later: with no reader yet, an allowed open fails with
    ENXIO; a refused one with EACCES."""
    try:
        os.close(procself.open_self(f"fd/{fd}", os.O_WRONLY | os.O_NONBLOCK))
    except OSError as e:
        if e.errno != errno.ENXIO:
            raise SetupError(f"exec fifo: {e.strerror}") from None


def _fifo_reporter(fd):
    def report(error):
        try:
            os.write(fd, error.encode(errors="replace"))
        except OSError:
            pass
    return report


def _above(fd, n):
    """`fd` moved to a number >= n, close-on-exec."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, n)
    os.close(fd)
    return new


def _install_stdio(stdio, extra_fds, keep=()):
    """dup the process's stdio to 0-2 and extra fds to 3...; close every
    other fd except `keep` (already above them)."""
    wanted = list(stdio) + list(extra_fds)
    # sources moved above the targets first, so dup2 never clobbers one still needed
    moved = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, len(wanted)) for fd in wanted]
    for target, fd in enumerate(moved):
        os.dup2(fd, target, inheritable=True)
    low = len(wanted)
    for fd in sorted(k for k in keep if k is not None):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 0x7FFFFFFF)

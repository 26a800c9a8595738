"""The seccomp filter of the container's processes: ``config.seccomp`` in
the OCI ``linux.seccomp`` shape, compiled by libseccomp and loaded in
``libcontainer_seal``, the last step before execve.

Loading a filter needs no_new_privs or CAP_SYS_ADMIN. The filter does not
set no_new_privs by itself; without it, the capabilities plugin keeps
CAP_SYS_ADMIN in the permitted set until here (execve drops it again unless
the config grants it), and this plugin raises it into the effective set
just for the load.

A syscall name the host's libseccomp does not know is skipped (a debug log
record), as runc does: engines' default profiles list syscalls newer than
many hosts' libseccomp.

SCMP_ACT_NOTIFY (seccomp user notification): the runtime-spec's seccomp
agent protocol, for the init and for joined processes. The parent connects
to ``listenerPath`` before the fork (the path is the host's: the child is in
the container's mount namespace); the child inherits the socket and, once
the filter is loaded with a listener, sends the agent the container process
state (``fds: ["seccompFd"]``, ``pid``, ``metadata``, ``state``) with the
notify fd (SCM_RIGHTS). Such a filter is loaded in
``libcontainer_setup_privileges``, before the runtime closes the child's
other fds (an init: before it waits for ``start``), as runc does; every
other one in the seal.
"""
import json
import os
import socket

from libcontainer import hookimpl, log
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import caps, misc
from libcontainer.linux import seccomp as libseccomp

SYS_ADMIN = caps.NAMES["SYS_ADMIN"]
OCI_VERSION = "1.2.1"
# (socket connected to listenerPath, pipe read end, pipe write end): made by
# the parent before the fork, inherited by the child; the parent tells the
# child its host pid through the pipe
_agent = None
_loaded = False     # the filter is in place (child)


@hookimpl
def libcontainer_validate_config(config):
    if config.seccomp is not None:
        try:
            filt = libseccomp.parse(config.seccomp, "seccomp")
        except libseccomp.ProfileError as e:
            raise ConfigError(str(e)) from None
        if filt.unknown:
            log.debug("seccomp: syscalls unknown to libseccomp skipped",
                      syscalls=sorted(set(filt.unknown)))


@hookimpl
def libcontainer_setup_privileges(container, process):
    # a process whose agent waits gets its filter now, as runc: the runtime
    # closes the process's other fds (the agent's socket too) before exec (an
    # init: before it waits for `start`, so that the agent has the fd while
    # the container is created). The syscalls left until execve run under it.
    if _agent is not None:
        _load(container, process)


@hookimpl
def libcontainer_seal(container, process):
    if not _loaded:
        _load(container, process)


def _load(container, process):
    global _loaded
    profile = container.config.seccomp
    if profile is None:
        return
    _loaded = True
    try:
        filt = libseccomp.parse(profile, "seccomp")
    except libseccomp.ProfileError as e:
        raise SetupError(str(e)) from None
    raised = None
    if not misc.prctl(misc.PR_GET_NO_NEW_PRIVS):
        effective, permitted, inheritable = caps.capget()
        if SYS_ADMIN not in effective:
            if SYS_ADMIN not in permitted:
                raise SetupError("seccomp: loading a filter needs no_new_privileges or "
                                 "CAP_SYS_ADMIN, and the process has neither")
            caps.capset(effective | {SYS_ADMIN}, permitted, inheritable)
            raised = (effective, permitted, inheritable)
    try:
        notify_fd = libseccomp.load(filt)
    except OSError as e:
        raise SetupError(f"seccomp: {e.filename}: {e.strerror}") from None
    if notify_fd is not None:
        _hand_over(container, process, filt, notify_fd)
    if raised:
        try:
            caps.capset(*raised)
        except OSError as e:
            raise SetupError(f"seccomp: the profile must allow capset "
                             f"({e.strerror})") from None


# -- the seccomp agent ---------------------------------------------------------

def _listener(config):
    """The listener path of a profile with SCMP_ACT_NOTIFY rules, or ""."""
    if config.seccomp is None or not config.seccomp.get("listenerPath"):
        return ""
    filt = libseccomp.parse(config.seccomp, "seccomp")
    return filt.listener_path if filt.notify else ""


@hookimpl
def libcontainer_validate_process(container, process):
    # the parent's last step before the fork, for the init and for joined
    # processes: a connection the agent accepts is what is validated here
    global _agent
    close_agent()
    path = _listener(container.config)
    if not path:
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as e:
        sock.close()
        raise SetupError(f"seccomp.listenerPath: cannot connect to {path}: "
                         f"{(e.strerror or str(e)).lower()}") from None
    _agent = (sock, *os.pipe())


@hookimpl
def libcontainer_post_clone(container, process, pid):
    if _agent is not None:
        os.write(_agent[2], str(pid).encode())
        close_agent()       # the child has its copies


def close_agent():
    global _agent
    if _agent is not None:
        sock, r, w = _agent
        _agent = None
        sock.close()
        os.close(r)
        os.close(w)


def _hand_over(container, process, filt, notify_fd):
    """Send the agent the container process state and the notify fd, as
    runc: the process's pid, and the container's state."""
    try:
        sock, r, _ = _agent
        pid = int(os.read(r, 32) or 0)     # written before the parent's go-ahead
        oci = container.state.get("oci") or {}
        state = {"ociVersion": OCI_VERSION, "id": container.id,
                 "status": "creating" if process.init else "running",
                 "pid": pid if process.init else container.init_pid,
                 "bundle": oci.get("bundle", "")}
        if container.config.labels:
            state["annotations"] = container.config.labels
        message = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": pid,
                   "metadata": filt.metadata, "state": state}
        try:
            socket.send_fds(sock, [json.dumps(message).encode()], [notify_fd])
        except OSError as e:
            raise SetupError(f"seccomp: sending the notify fd to {filt.listener_path}: "
                             f"{e.strerror}") from None
    finally:
        os.close(notify_fd)
        close_agent()

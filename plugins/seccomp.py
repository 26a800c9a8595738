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
agent protocol. The parent connects to ``listenerPath`` before the fork (the
path is the host's: after pivot_root the init could not reach it); the init
inherits the socket and, once the filter is loaded with a listener, sends
the agent the container process state (``fds: ["seccompFd"]``, ``pid``,
``metadata``, ``state``) with the notify fd (SCM_RIGHTS). Such a filter
is loaded in ``libcontainer_setup_privileges``, before the init waits for
``start``, as runc does; every other one in the seal. Only the init's
filter is handed over: a joined process has no connection to the agent, so
its notified syscalls fail with ENOSYS.
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
_agent = None       # the socket connected to listenerPath (parent, then inherited)
_host_pid = 0       # the init's pid on the host, learnt before pivot_root
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
    # an init whose agent waits gets its filter now, as runc: the runtime
    # closes the init's other fds (the agent's socket too) before it waits
    # for `start`, and the agent then has the fd while the container is
    # created. The syscalls left until execve run under the filter.
    if process.init and _agent is not None:
        _load(container)


@hookimpl
def libcontainer_seal(container, process):
    if _agent is None and not _loaded:
        _load(container)


def _load(container):
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
        _hand_over(container, filt, notify_fd)
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
def libcontainer_pre_clone(container, process):
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
    _agent = sock


@hookimpl
def libcontainer_post_clone(container, process, pid):
    if process.init:
        close_agent()       # the init has its copy


def close_agent():
    global _agent
    if _agent is not None:
        _agent.close()
        _agent = None


@hookimpl
def libcontainer_rootfs_ready(container, process):
    global _host_pid
    if _agent is not None:
        # /proc is still the host's here: /proc/self is the host pid
        _host_pid = int(os.readlink("/proc/self"))


def _hand_over(container, filt, notify_fd):
    """Send the agent the container process state and the notify fd."""
    try:
        if _agent is None:
            return      # a joined process: see the module's docstring
        oci = container.state.get("oci") or {}
        state = {"ociVersion": OCI_VERSION, "id": container.id, "status": "creating",
                 "pid": _host_pid, "bundle": oci.get("bundle", "")}
        if container.config.labels:
            state["annotations"] = container.config.labels
        message = {"ociVersion": OCI_VERSION, "fds": ["seccompFd"], "pid": _host_pid,
                   "metadata": filt.metadata, "state": state}
        try:
            socket.send_fds(_agent, [json.dumps(message).encode()], [notify_fd])
        except OSError as e:
            raise SetupError(f"seccomp: sending the notify fd to {filt.listener_path}: "
                             f"{e.strerror}") from None
    finally:
        os.close(notify_fd)
        close_agent()

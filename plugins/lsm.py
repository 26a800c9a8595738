"""AppArmor profiles and SELinux labels, as runc applies them.

* ``apparmor_profile``: ``exec PROFILE`` is written to the process's
  ``attr/apparmor/exec`` (``attr/exec`` on kernels before 5.1), so the
  profile confines it from its ``execve`` on. A profile that is not loaded,
  or AppArmor not enabled, is an error (runc fails too, at the write).
* ``process_label``: the SELinux label written to ``attr/exec``; an error
  when SELinux is not enabled (runc's check).
* ``mount_label``: ``context="LABEL"`` added to the container's tmpfs,
  mqueue and devpts mounts when SELinux is enabled; ignored otherwise.

A process's own ``apparmor_profile``/``process_label`` (``pyrunc exec
--apparmor``, ``--process-label``) win over the config's. The attributes are
written in ``setup_privileges``, after the capabilities are set and before
the seccomp filter, as runc does; they take effect at ``execve``.
"""
import errno
import os

from libcontainer import hookimpl, procself
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import fstatfs_type   # used after pivot_root: imported now

# where the kernel shows them; the tests point these at a temporary tree
SYS = "/sys"
PROC = "/proc"
SELINUXFS = "/sys/fs/selinux"
PROC_SUPER_MAGIC = 0x9FA0
_LABELLED = ("tmpfs", "mqueue", "devpts")


def apparmor_enabled():
    """AppArmor is on (module parameter) and securityfs shows its policy."""
    try:
        with open(f"{SYS}/module/apparmor/parameters/enabled") as f:
            on = f.read(1) == "Y"
    except OSError:
        return False
    return on and os.path.isdir(f"{SYS}/kernel/security/apparmor")


def apparmor_loaded(profile):
    """Whether `profile` is loaded ("unconfined" always is)."""
    if profile == "unconfined":
        return True
    try:
        with open(f"{SYS}/kernel/security/apparmor/profiles") as f:
            return any(line.rstrip("\n").rsplit(" (", 1)[0] == profile for line in f)
    except OSError:
        return False


def selinux_enabled():
    """selinuxfs is mounted (what runc's go-selinux checks first)."""
    return os.path.exists(f"{SELINUXFS}/enforce")


def mount_data(data, label):
    """Mount options with the SELinux context of every file in the mount
    (quoted: MCS labels contain commas)."""
    context = f'context="{label}"'
    return f"{data},{context}" if data else context


# -- checks in the runtime -------------------------------------------------------

@hookimpl
def libcontainer_validate_config(config):
    profile = config.apparmor_profile
    if profile:
        if not apparmor_enabled():
            raise ConfigError(f"apparmor_profile: {profile!r} cannot be applied: AppArmor is "
                              f"not enabled on this host")
        if not apparmor_loaded(profile):
            raise ConfigError(f"apparmor_profile: profile {profile!r} is not loaded (see "
                              f"{SYS}/kernel/security/apparmor/profiles; apparmor_parser -r "
                              f"FILE loads one)")
    if config.process_label and not selinux_enabled():
        raise ConfigError(f"process_label: {config.process_label!r} cannot be applied: SELinux "
                          f"is not enabled on this host")


# -- in the container's processes ------------------------------------------------------

@hookimpl
def libcontainer_finish_namespaces(container, process):
    """Before the mounts: their SELinux context (the child's own copy of
    the config is changed)."""
    label = container.config.mount_label
    if not (process.init and label and selinux_enabled()):
        return
    for m in container.config.mounts:
        if m.device in _LABELLED and "context=" not in m.data:
            m.data = mount_data(m.data, label)


@hookimpl
def libcontainer_setup_privileges(container, process):
    profile = _own(process, container.config, "apparmor_profile")
    if profile:
        _write(("apparmor/exec", "exec"), f"exec {profile}", "apparmor_profile", profile,
               {errno.ENOENT: "the profile is not loaded",
                errno.EINVAL: "AppArmor is not enabled on this host"})
    label = _own(process, container.config, "process_label")
    if label:
        _write(("exec",), label, "process_label", label,
               {errno.EINVAL: "SELinux is not enabled on this host, or the label is invalid"})


def _own(process, config, field):
    value = getattr(process, field, None)
    return getattr(config, field) if value is None else value


def _attr(name):
    # the calling thread's: the kernel lets a task set only its own
    return f"{PROC}/thread-self/attr/{name}"


def _open_attr(names):
    """The first of attr/`names` that exists (attr/apparmor/exec is attr/exec
    before Linux 5.1): (fd, path). On the real /proc through the child's
    pinned /proc/PID (it is single-threaded: its thread's), never the image's
    /proc; O_NONBLOCK so that a FIFO in its place cannot hang the setup."""
    flags = os.O_WRONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    for i, name in enumerate(names):
        path = _attr(name)
        try:
            if PROC == "/proc":
                return procself.open_self(f"attr/{name}", flags), path
            return os.open(path, flags), path
        except FileNotFoundError:
            if i == len(names) - 1:
                raise


def _write(names, value, field, what, reasons):
    try:
        fd, path = _open_attr(names)
    except OSError as e:
        raise SetupError(f"{field}: cannot apply {what!r}: {_attr(names[-1])}: "
                         f"{e.strerror}") from None
    try:
        if PROC == "/proc":
            # never a file mounted over /proc by the container (CVE-2019-16884)
            if fstatfs_type(fd) != PROC_SUPER_MAGIC:
                raise SetupError(f"{field}: cannot apply {what!r}: {path} is not on procfs")
        os.write(fd, value.encode())
    except OSError as e:
        why = reasons.get(e.errno, e.strerror)
        raise SetupError(f"{field}: cannot apply {what!r}: {why} (writing {path})") from None
    finally:
        os.close(fd)

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
"""
from libcontainer import hookimpl, log
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import caps, misc
from libcontainer.linux import seccomp as libseccomp

SYS_ADMIN = caps.NAMES["SYS_ADMIN"]


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
def libcontainer_seal(container, process):
    profile = container.config.seccomp
    if profile is None:
        return
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
        libseccomp.load(filt)
    except OSError as e:
        raise SetupError(f"seccomp: {e.filename}: {e.strerror}") from None
    if raised:
        try:
            caps.capset(*raised)
        except OSError as e:
            raise SetupError(f"seccomp: the profile must allow capset "
                             f"({e.strerror})") from None

"""AppArmor and SELinux labels. Neither is supported: the fields are
accepted only when empty, so that a config asking for a confinement we
cannot give fails instead of running unconfined."""
import os

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError

_LSMS = {"apparmor_profile": ("AppArmor", "/sys/kernel/security/apparmor"),
         "process_label": ("SELinux", "/sys/fs/selinux/enforce"),
         "mount_label": ("SELinux", "/sys/fs/selinux/enforce")}


@hookimpl
def libcontainer_validate_config(config):
    for field, (lsm, probe) in _LSMS.items():
        value = getattr(config, field)
        if value:
            host = "is enabled on this host but" if os.path.exists(probe) else \
                "is not enabled on this host and"
            raise ConfigError(f"{field}: {value!r} cannot be applied: {lsm} {host} "
                              f"libcontainer does not support it (leave the field empty)")


@hookimpl
def libcontainer_setup_limits(container, process):
    # a process's own labels (exec --process): never dropped silently
    for field in ("apparmor_profile", "process_label"):
        value = getattr(process, field, None)
        if value and value != getattr(container.config, field):
            raise SetupError(f"process.{field}: {value!r} cannot be applied: libcontainer "
                             f"does not support {_LSMS[field][0]}")

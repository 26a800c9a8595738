"""Kernel parameters of the container's own namespaces (``config.sysctl``).

Only namespaced parameters, and only when the container has that namespace
of its own: ``net.*`` with NEWNET; ``kernel.shm*``, ``kernel.msg*``,
``kernel.sem`` and ``fs.mqueue.*`` with NEWIPC; ``kernel.hostname`` and
``kernel.domainname`` with NEWUTS. Anything else would change the host and
is refused when the config is validated.

The values are written in ``libcontainer_setup_mounts``, before
``pivot_root``, through the /proc the child still shares with the host: a
file under /proc/sys acts on the namespaces of the process writing it. Later
would be too late: ``readonly_paths`` (``libcontainer_setup_environment``)
usually makes the container's /proc/sys read-only.
"""
import os

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError

# (prefix, exact?, namespace it belongs to)
_RULES = [("net.", False, "NEWNET"), ("kernel.shm", False, "NEWIPC"),
          ("kernel.msg", False, "NEWIPC"), ("kernel.sem", True, "NEWIPC"),
          ("fs.mqueue.", False, "NEWIPC"), ("kernel.hostname", True, "NEWUTS"),
          ("kernel.domainname", True, "NEWUTS")]
_NS_FILE = {"NEWNET": "net", "NEWIPC": "ipc", "NEWUTS": "uts"}


def path_of(key):
    """'net.ipv4.ip_forward' or 'net/ipv4/ip_forward' -> 'net/ipv4/ip_forward'."""
    parts = key.split("/") if "/" in key else key.split(".")
    if any(p in ("", ".", "..") for p in parts):
        return None
    return "/".join(parts)


def _namespace(key):
    dotted = key.replace("/", ".")
    for prefix, exact, ns in _RULES:
        if dotted == prefix if exact else dotted.startswith(prefix):
            return ns
    return None


def _is_hosts(path, ns_file):
    try:
        a, b = os.stat(path), os.stat(f"/proc/self/ns/{ns_file}")
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


@hookimpl
def libcontainer_validate_config(config):
    for key, value in config.sysctl.items():
        where = f"sysctl.{key}"
        if path_of(key) is None:
            raise ConfigError(f"{where}: {key!r} is not a valid sysctl name")
        ns = _namespace(key)
        if ns is None:
            raise ConfigError(f"{where}: not a namespaced sysctl: setting it would change "
                              f"the host (allowed: net.* with NEWNET; kernel.shm*, "
                              f"kernel.msg*, kernel.sem, fs.mqueue.* with NEWIPC; "
                              f"kernel.hostname, kernel.domainname with NEWUTS)")
        # a netns network adds NEWNET in its validate_config: checked again
        # in libcontainer_check_config, once every namespace is decided
        if config.namespace(ns) is None and not (ns == "NEWNET" and _joins_netns(config)):
            raise ConfigError(f"{where}: needs a {ns} namespace of the container's own")
        for name in ("hostname", "domainname"):
            if key.replace("/", ".") == f"kernel.{name}" and getattr(config, name):
                raise ConfigError(f"{where}: conflicts with the config's {name} field")


def _joins_netns(config):
    return any(net.type == "netns" for net in config.networks)


@hookimpl
def libcontainer_check_config(config):
    # a phase after validate_config: the netns network sets a path there
    for key in config.sysctl:
        ns = _namespace(key)
        own = config.namespace(ns)
        if own is None:
            raise ConfigError(f"sysctl.{key}: needs a {ns} namespace of the container's own")
        if own.path and _is_hosts(own.path, _NS_FILE[ns]):
            raise ConfigError(f"sysctl.{key}: the container joins the host's {ns} namespace "
                              f"({own.path})")


@hookimpl
def libcontainer_setup_mounts(container, process):
    for key, value in container.config.sysctl.items():
        try:
            with open(f"/proc/sys/{path_of(key)}", "w") as f:
                f.write(value)
        except OSError as e:
            raise SetupError(f"sysctl {key}={value!r}: {e.strerror}") from None

"""The ``netns`` type: the container joins an existing network namespace,
named (``name``: /run/netns/<name>, as ``ip netns add`` makes them) or given
by ``path`` (/proc/<pid>/ns/net, a bind mount), instead of getting a new one.

It only configures: validation points the config's NEWNET namespace at that
path (adding NEWNET if missing) and the namespaces plugin joins it.
"""
import fcntl
import os

from libcontainer.errors import ConfigError
from libcontainer.linux.namespaces import CLONE

from .base import NetworkType

NETNS_RUN_DIR = "/run/netns"
NS_GET_NSTYPE = 0xb703       # _IO(0xb7, 0x3)


def _is_netns(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == CLONE.NEWNET
    except OSError:
        return False
    finally:
        os.close(fd)


def _same_file(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


class NetNs(NetworkType):
    def validate(self, network, where, config):
        if network.path and network.name:
            raise ConfigError(f"{where}: give the namespace's name or its path, not both")
        if network.name:
            if "/" in network.name or network.name in (".", ".."):
                raise ConfigError(f"{where}.name: {network.name!r} is not a namespace name")
            field, path = "name", os.path.join(NETNS_RUN_DIR, network.name)
        elif network.path:
            field, path = "path", network.path
        else:
            raise ConfigError(f"{where}: a netns network needs a name or a path")
        if not os.path.exists(path):
            raise ConfigError(f"{where}.{field}: {path} does not exist")
        if not _is_netns(path):
            raise ConfigError(f"{where}.{field}: {path} is not a network namespace")
        ns = config.namespace("NEWNET")
        if ns is None:
            from libcontainer.configs import Namespace
            config.namespaces.append(Namespace("NEWNET", path))
        elif not ns.path:
            ns.path = path
        elif not _same_file(ns.path, path):
            raise ConfigError(f"{where}.{field}: joins {path}, but the NEWNET namespace "
                              f"joins {ns.path}")

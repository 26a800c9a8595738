"""pyroute2, imported only when a network needs netlink (~150 ms).

A netlink socket stays bound to the network namespace it was created in, so
a socket for the container's namespace is made by stepping this process into
it with ``setns`` just for the ``socket()`` call, and straight back. That
costs ~1.5 ms; pyroute2's ``IPRoute(netns=...)`` forks a helper process to do
the same and costs ~12 ms here.
"""
import contextlib
import fcntl
import os

from pyroute2 import IPRoute  # noqa: F401  (re-exported for base.Context)
from pyroute2.netlink.exceptions import NetlinkError  # noqa: F401

from libcontainer.linux.namespaces import CLONE, setns

IFA_F_NODAD = 0x02        # no duplicate address detection: usable at once
LOCK = "/run/libcontainer-network.lock"


def open_in(path):
    """An IPRoute bound to the network namespace at `path`."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(target, CLONE.NEWNET, path)
        finally:
            os.close(target)
        try:
            return IPRoute()
        finally:
            setns(own, CLONE.NEWNET, "/proc/self/ns/net")
    finally:
        os.close(own)


@contextlib.contextmanager
def host_lock():
    """Serialise bridge create/attach against bridge removal between
    containers (and processes)."""
    fd = os.open(LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def index(ipr, name):
    """The index of interface `name`, or None."""
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_kind(ipr, idx):
    link = ipr.link("get", index=idx)[0]
    info = link.get("IFLA_LINKINFO")
    return info.get("IFLA_INFO_KIND") if info is not None else None


def add_address(ipr, idx, iface):
    """Add an ipaddress.IPv4Interface/IPv6Interface to interface `idx`."""
    kw = {"flags": IFA_F_NODAD} if iface.version == 6 else {}
    ipr.addr("add", index=idx, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)


def add_default_route(ipr, gateway, version):
    ipr.route("add", dst="0.0.0.0/0" if version == 4 else "::/0", gateway=gateway)

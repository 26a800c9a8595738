"""The ``netdevice`` type (OCI ``linux.netDevices``): an existing host
interface, ``host_interface_name``, is moved into the container's network
namespace, renamed ``name`` (default: the same), and moved back -- with its
name -- when the container is deleted.

* attach (parent, the child waits in its netns): the namespace is held by a
  bind mount of /proc/PID/ns/net in the container's state directory (when
  the container's processes are gone, a namespace nobody holds would take a
  virtual device with it, and hand a physical one to the initial namespace
  under another name); the device's permanent addresses are noted, the
  device moved, renamed, given its addresses again and brought up if it was.
* teardown: the device is moved back to this process's namespace, renamed
  and given its addresses; the hold is released.
"""
import contextlib
import os

from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.mount import MNT_DETACH, MS, mount, umount2

from .base import NetworkType, check_ifname, host_has_interface

IFF_UP = 0x1
IFA_F_PERMANENT = 0x80
RT_SCOPE_LINK = 253


class NetDevice(NetworkType):
    def validate(self, network, where, config):
        host = network.host_interface_name
        check_ifname(host, f"{where}.host_interface_name")
        network.name = network.name or host
        check_ifname(network.name, f"{where}.name")
        if network.name == "lo":
            raise ConfigError(f"{where}.name: 'lo' is the loopback interface")
        if not host_has_interface(host):
            raise ConfigError(f"{where}.host_interface_name: no interface {host!r} on the host "
                              f"(linux.netDevices)")

    def attach(self, ctx, network, record):
        from . import netlink
        ipr = ctx.host
        idx = netlink.index(ipr, network.host_interface_name)
        if idx is None:
            raise SetupError(f"host_interface_name: no interface "
                             f"{network.host_interface_name!r} on the host")
        hold = os.path.join(ctx.container.state_dir, f"netdev-{network.host_interface_name}")
        with open(hold, "x"):
            pass
        try:
            mount(f"/proc/{ctx.pid}/ns/net", hold, None, MS.BIND)
        except OSError:
            os.unlink(hold)
            raise
        record["hold"] = hold
        up, addresses = _describe(ipr, idx)
        record.update(host=network.host_interface_name, name=network.name, up=up,
                      addresses=addresses)
        # its index there: the container may rename it and name another "name"
        record["index"] = _move(ipr, idx, hold, network.host_interface_name, network.name, up,
                                addresses)

    def teardown(self, ctx, record):
        from . import netlink
        hold = record["hold"]
        try:
            inside = netlink.open_in(hold) if record.get("name") else None
        except OSError:
            inside = None       # not a namespace any more: nothing to bring back
        try:
            if inside is not None:
                idx, name = _find(inside, record)
                if idx is not None:
                    _move(inside, idx, "/proc/self/ns/net", name, record["host"],
                          record.get("up"), record.get("addresses", []))
        finally:
            if inside is not None:
                inside.close()
            with contextlib.suppress(OSError):
                umount2(hold, MNT_DETACH)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(hold)


def _find(ipr, record):
    """(index, name) in the container's namespace of the device moved in,
    or (None, None). By the index it got there: the container's root can
    rename it and give its name to a device of its own, which would go to
    the host under the host device's name, with its addresses. By name only
    if the move in failed halfway (no index recorded; nothing ran there)."""
    from . import netlink
    if "index" in record:
        try:
            link = ipr.link("get", index=record["index"])[0]
        except netlink.NetlinkError:
            return None, None       # deleted there (a virtual device)
        return record["index"], link.get_attr("IFLA_IFNAME")
    for name in (record["name"], record["host"]):
        idx = netlink.index(ipr, name)
        if idx is not None:
            return idx, name
    return None, None


def _describe(ipr, idx):
    """(up, permanent addresses in CIDR notation) of the interface `idx`."""
    link = ipr.link("get", index=idx)[0]
    addresses = []
    for msg in ipr.get_addr(index=idx):
        flags = msg.get("IFA_FLAGS") or msg["flags"]
        if flags & IFA_F_PERMANENT and msg["scope"] != RT_SCOPE_LINK:
            address = msg.get("IFA_LOCAL") or msg.get("IFA_ADDRESS")
            addresses.append(f"{address}/{msg['prefixlen']}")
    return bool(link["flags"] & IFF_UP), addresses


def _move(ipr, idx, netns, old, name, up, addresses):
    """Move interface `idx` (named `old`) of `ipr`'s namespace into the
    namespace at path `netns`, renamed `name`, with `addresses`, up if `up`.
    Returns its index there."""
    from . import netlink
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        ipr.link("set", index=idx, state="down")
        # moved and renamed `name` in one request (or it fails): a device
        # named `old` there is another one (a host device of that name)
        ipr.link("set", index=idx, net_ns_fd=fd, ifname=name)
    finally:
        os.close(fd)
    target = netlink.open_in(netns)
    try:
        # the index changes too if it is taken there: found by name
        idx = netlink.index(target, name)
        if idx is None:
            raise SetupError(f"interface {old!r} is not found where it was moved")
        if addresses:
            import ipaddress    # ~1 ms: only with addresses to set
        for address in addresses:
            netlink.add_address(target, idx, ipaddress.ip_interface(address))
        if up:
            target.link("set", index=idx, state="up")
        return idx
    finally:
        target.close()

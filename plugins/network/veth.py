"""The ``veth`` type: a veth pair, one end on the host (on a bridge if one is
named), the other moved into the container and configured there.

* create (parent, before the clone): the pair, both ends in the host, the
  container's end under a temporary name; the bridge, created if missing; the
  host end attached to it and up.
* attach (parent, the child waits in its new netns): the container's end is
  moved into it, renamed (``name``, default ``eth0``), given its MAC, its
  addresses and default routes, and brought up.
* teardown: the host end is deleted (its peer goes with it), and the bridge
  too if this plugin created it and no interface is attached to it any more.

A bridge the plugin creates is marked with the alias ``libcontainer`` (so a
later container's teardown can tell it may go) and gets the network's
gateway addresses, with the prefix of the container's addresses: the host is
then reachable from the container through it.
"""
import errno
import os

from libcontainer.errors import ConfigError, SetupError

from .base import (NetworkType, check_cidr, check_ifname, check_ip, check_mac, describe,
                   host_has_interface)

BRIDGE_ALIAS = "libcontainer"


def _generated(prefix):
    return prefix + os.urandom(5).hex()      # 14 characters


class Veth(NetworkType):
    def validate(self, network, where, config):
        network.name = network.name or "eth0"
        check_ifname(network.name, f"{where}.name")
        if network.name == "lo":
            raise ConfigError(f"{where}.name: 'lo' is the loopback interface")
        host = network.host_interface_name
        if host:
            check_ifname(host, f"{where}.host_interface_name")
            if host_has_interface(host):
                raise ConfigError(f"{where}.host_interface_name: an interface named "
                                  f"{host!r} already exists on the host")
        if network.bridge:
            check_ifname(network.bridge, f"{where}.bridge")
            if network.bridge == host:
                raise ConfigError(f"{where}.bridge: same name as host_interface_name")
        v4 = check_cidr(network.address, f"{where}.address", 4) if network.address else None
        v6 = (check_cidr(network.ipv6_address, f"{where}.ipv6_address", 6)
              if network.ipv6_address else None)
        for field, addr, version in (("gateway", v4, 4), ("ipv6_gateway", v6, 6)):
            value = getattr(network, field)
            if value:
                check_ip(value, f"{where}.{field}", version)
                if addr is None:
                    raise ConfigError(f"{where}.{field}: needs "
                                      f"{'address' if version == 4 else 'ipv6_address'}")
        if network.mac_address:
            check_mac(network.mac_address, f"{where}.mac_address")
        if network.mtu and not 68 <= network.mtu <= 65535:
            raise ConfigError(f"{where}.mtu: {network.mtu} is not between 68 and 65535")
        if network.mtu and v6 and network.mtu < 1280:
            raise ConfigError(f"{where}.mtu: {network.mtu} is below 1280, the IPv6 minimum")
        if network.options:
            raise ConfigError(f"{where}.options: veth takes none "
                              f"(got {', '.join(sorted(network.options))})")

    # -- parent, before the clone -------------------------------------------
    def create(self, ctx, network, record):
        from . import netlink
        ipr = ctx.host
        host = network.host_interface_name or _generated("veth")
        peer = _generated("vtmp")
        mtu = {"mtu": network.mtu} if network.mtu else {}
        with netlink.host_lock():
            bridge = self._bridge(ctx, network, record) if network.bridge else None
            try:
                ipr.link("add", ifname=host, kind="veth", peer={"ifname": peer, **mtu}, **mtu)
            except netlink.NetlinkError as e:
                if e.code == errno.EEXIST:
                    raise SetupError(f"host_interface_name: an interface named {host!r} "
                                     f"already exists on the host") from None
                raise
            record.update(host=host, peer=peer)
            idx = netlink.index(ipr, host)
            ipr.link("set", index=idx, state="up",
                     **({"master": bridge} if bridge is not None else {}))

    def _bridge(self, ctx, network, record):
        """The index of the bridge, created (and marked) if missing."""
        from . import netlink
        ipr, name = ctx.host, network.bridge
        idx = netlink.index(ipr, name)
        if idx is not None:
            if netlink.link_kind(ipr, idx) != "bridge":
                raise SetupError(f"bridge: {name!r} exists on the host and is not a bridge")
            record["bridge"] = name
            return idx
        try:
            ipr.link("add", ifname=name, kind="bridge")
        except netlink.NetlinkError as e:
            if e.code != errno.EEXIST:      # else: made by a concurrent start
                raise
            return self._bridge(ctx, network, record)
        record["bridge"] = name
        idx = netlink.index(ipr, name)
        ipr.link("set", index=idx, ifalias=BRIDGE_ALIAS)
        for gateway, address in ((network.gateway, network.address),
                                 (network.ipv6_gateway, network.ipv6_address)):
            if gateway:
                prefix = address.split("/", 1)[1]
                iface = check_cidr(f"{gateway}/{prefix}", "gateway", 6 if ":" in gateway else 4)
                if iface.network == check_cidr(address, "address", iface.version).network:
                    netlink.add_address(ipr, idx, iface)
        ipr.link("set", index=idx, state="up")
        return idx

    # -- parent, the child waits in its netns ---------------------------------
    def attach(self, ctx, network, record):
        from . import netlink
        peer = record["peer"]
        idx = netlink.index(ctx.host, peer)
        if idx is None:
            raise SetupError(f"the container's end {peer!r} of the veth pair is gone")
        ctx.host.link("set", index=idx, net_ns_pid=ctx.pid)
        ns = ctx.inside
        idx = netlink.index(ns, peer)
        change = {"ifname": network.name}
        if network.mac_address:
            change["address"] = network.mac_address.lower()
        ns.link("set", index=idx, **change)
        for address in (network.address, network.ipv6_address):
            if address:
                iface = check_cidr(address, "address", 6 if ":" in address else 4)
                netlink.add_address(ns, idx, iface)
        ns.link("set", index=idx, state="up")
        for field, gateway, address in (("gateway", network.gateway, network.address),
                                        ("ipv6_gateway", network.ipv6_gateway,
                                         network.ipv6_address)):
            if not gateway:
                continue
            try:
                netlink.add_default_route(ns, gateway, 6 if ":" in gateway else 4)
            except netlink.NetlinkError as e:
                raise SetupError(f"{field}: default route via {gateway} "
                                 f"(from {address}): {describe(e)}") from None

    # -- any process, after the end -----------------------------------------
    def teardown(self, ctx, record):
        from . import netlink
        ipr = ctx.host
        with netlink.host_lock():
            host = record.get("host")
            idx = netlink.index(ipr, host) if host else None
            if idx is not None:
                _ignore_gone(ipr.link, "del", index=idx)
            bridge = record.get("bridge")
            idx = netlink.index(ipr, bridge) if bridge else None
            if idx is not None and _ours_and_unused(ipr, idx):
                _ignore_gone(ipr.link, "del", index=idx)


def _ours_and_unused(ipr, idx):
    from . import netlink
    link = ipr.link("get", index=idx)[0]
    return (link.get("IFLA_IFALIAS") == BRIDGE_ALIAS
            and netlink.link_kind(ipr, idx) == "bridge"
            and not tuple(ipr.link("dump", master=idx)))


def _ignore_gone(fn, *args, **kwargs):
    from . import netlink
    try:
        fn(*args, **kwargs)
    except netlink.NetlinkError as e:
        if e.code != errno.ENODEV:    # gone with the container's netns meanwhile
            raise

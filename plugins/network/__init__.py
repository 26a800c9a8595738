"""Networks: the config's ``networks`` and ``routes``, set up by network
*types* that plugins register (``registry.add("network_type", name, obj)``):
``loopback``, ``veth``, ``netns`` and ``netdevice`` (OCI ``linux.netDevices``)
are built in; see docs/network.md to add one, and base.NetworkType for the
methods a type may have.

Phases: types ``create`` host-side things before the clone, ``attach`` them
once the child has its network namespace (then the ``routes`` are added), and
``setup_in_child`` runs in the init before exec. What the types made is kept
in ``container.stash["network"]`` so that ``teardown`` works from any process.

pyroute2 is imported only when a type opens a netlink socket: a container
with no networks, or only ``loopback``, never imports it.
"""
import os

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, LibcontainerError, PluginError, SetupError

from .base import Context, NetworkType, check_ifname, check_ip, describe  # noqa: F401
from .loopback import Loopback
from .netdevice import NetDevice
from .netns import NetNs
from .veth import Veth

NAME = "network"
KIND = "network_type"
_PARENT_PHASES = ("create", "attach")


@hookimpl
def libcontainer_register(registry):
    registry.add(KIND, "loopback", Loopback())
    registry.add(KIND, "veth", Veth())
    registry.add(KIND, "netns", NetNs())
    registry.add(KIND, "netdevice", NetDevice())


def _get(registry, name, where):
    try:
        return registry.get(KIND, name)
    except PluginError as e:
        raise ConfigError(f"{where}: {e}; is the plugin that provides it installed "
                          f"and enabled?") from None


def _fail(where, typename, exc):
    """One line naming the network: 'networks[0].mtu: ...' when the type
    named the field, else 'networks[0] (veth): ...'."""
    msg = str(exc) if isinstance(exc, LibcontainerError) else describe(exc)
    msg = " ".join(msg.splitlines())
    if isinstance(exc, SetupError) and msg.split(":", 1)[0].isidentifier():
        return SetupError(f"{where}.{msg}")
    return SetupError(f"{where} ({typename}): {msg}")


def _call(where, typename, fn, *args):
    try:
        fn(*args)
    except ConfigError:
        raise
    except Exception as e:
        raise _fail(where, typename, e) from None


# -- configuration ----------------------------------------------------------

@hookimpl
def libcontainer_validate_config(config, registry):
    if not config.networks and not config.routes:
        return
    for i, net in enumerate(config.networks):
        where = f"networks[{i}]"
        if not isinstance(net.type, str) or not net.type:
            raise ConfigError(f"{where}.type: is required")
        typ = _get(registry, net.type, f"{where}.type")
        if hasattr(typ, "validate"):
            typ.validate(net, where, config)
    if not config.has_namespace("NEWNET"):
        raise ConfigError(f"{'networks' if config.networks else 'routes'}: needs a network "
                          f"namespace (add NEWNET to namespaces)")
    names = {}
    for i, net in enumerate(config.networks):
        if net.type != "netns" and net.name:
            if net.name in names:
                raise ConfigError(f"networks[{i}].name: {net.name!r} is also the name of "
                                  f"networks[{names[net.name]}]")
            names[net.name] = i
        host = net.host_interface_name
        if host:
            for j, other in enumerate(config.networks[:i]):
                if host in (other.host_interface_name, other.bridge):
                    raise ConfigError(f"networks[{i}].host_interface_name: {host!r} is also "
                                      f"used by networks[{j}]")
    joined = any(net.type == "netns" for net in config.networks)
    for i, route in enumerate(config.routes):
        _check_route(route, f"routes[{i}]", set(names) | {"lo"}, joined)


def _check_route(route, where, names, joined):
    import ipaddress
    versions = set()
    if route.destination != "default":
        try:
            versions.add(ipaddress.ip_network(route.destination).version)
        except ValueError:
            raise ConfigError(f"{where}.destination: {route.destination!r} is not a network "
                              f"in CIDR notation (e.g. 10.1.0.0/16) or 'default'") from None
    for field in ("gateway", "source"):
        value = getattr(route, field)
        if value:
            versions.add(check_ip(value, f"{where}.{field}").version)
    if len(versions) > 1:
        raise ConfigError(f"{where}: mixes IPv4 and IPv6 addresses")
    if route.interface_name:
        check_ifname(route.interface_name, f"{where}.interface_name")
        if route.interface_name not in names and not joined:
            raise ConfigError(f"{where}.interface_name: no network is named "
                              f"{route.interface_name!r}")
    elif not route.gateway:
        raise ConfigError(f"{where}: needs a gateway or an interface_name")


# -- setting up ---------------------------------------------------------------

def _types(container):
    registry = container.pm.registry
    return [(i, net, _get(registry, net.type, f"networks[{i}].type"))
            for i, net in enumerate(container.config.networks)]


@hookimpl
def libcontainer_pre_clone(container, process):
    config = container.config
    types = _types(container)
    if not config.routes and not any(hasattr(t, p) for _, _, t in types for p in _PARENT_PHASES):
        return       # nothing for the parent: leave the stash (and pyroute2) alone
    records = [{"type": net.type, "record": {}} for net in config.networks]
    container.stash[NAME] = {"netns": _host_netns(), "records": records}
    with Context(container) as ctx:
        for i, net, typ in types:
            if hasattr(typ, "create"):
                _call(f"networks[{i}]", net.type, typ.create, ctx, net, records[i]["record"])


@hookimpl
def libcontainer_post_clone(container, process, pid):
    records = container.stash.get(NAME, {}).get("records")
    if not process.init or records is None:
        return
    with Context(container, pid) as ctx:
        for i, net, typ in _types(container):
            if hasattr(typ, "attach"):
                _call(f"networks[{i}]", net.type, typ.attach, ctx, net, records[i]["record"])
        for i, route in enumerate(container.config.routes):
            _call(f"routes[{i}]", "route", _add_route, ctx, route)


def _host_netns():
    return os.readlink("/proc/self/ns/net")


def _add_route(ctx, route):
    from . import netlink
    ns = ctx.inside
    family = 6 if ":" in (route.destination + route.gateway + route.source) else 4
    dst = route.destination
    if dst == "default":
        dst = "::/0" if family == 6 else "0.0.0.0/0"
    spec = {"dst": dst}
    if route.gateway:
        spec["gateway"] = route.gateway
    if route.source:
        spec["prefsrc"] = route.source
    if route.interface_name:
        idx = netlink.index(ns, route.interface_name)
        if idx is None:
            raise SetupError(f"interface_name: no interface {route.interface_name!r} "
                             f"in the container")
        spec["oif"] = idx
    try:
        ns.route("add", **spec)
    except netlink.NetlinkError as e:
        raise SetupError(f"destination: route to {route.destination}"
                         f"{' via ' + route.gateway if route.gateway else ''}: "
                         f"{describe(e)}") from None


@hookimpl
def libcontainer_setup_environment(container, process):
    # the init, in its namespaces, after pivot_root: stdlib only
    for i, net, typ in _types(container):
        if hasattr(typ, "setup_in_child"):
            _call(f"networks[{i}]", net.type, typ.setup_in_child, net)


# -- queries ------------------------------------------------------------------

_STATS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped")
_TX_STATS = ("tx_bytes", "tx_packets", "tx_errors", "tx_dropped")


@hookimpl
def libcontainer_stats(container, stats):
    """Per interface of the container's network namespace, from
    /proc/<init>/net/dev (no netlink)."""
    from libcontainer import state as st
    if not container.config.has_namespace("NEWNET"):
        return      # the host's interfaces are not the container's
    pid = container.init_pid
    if not st.alive(pid, container.state.get("init_start_time")):
        return
    try:
        with open(f"/proc/{pid}/net/dev") as f:
            lines = f.read().splitlines()[2:]
    except OSError:
        return
    interfaces = {}
    for line in lines:
        name, _, counters = line.partition(":")
        values = [int(v) for v in counters.split()]
        interfaces[name.strip()] = {**dict(zip(_STATS, values[0:4])),
                                    **dict(zip(_TX_STATS, values[8:12]))}
    stats["network"] = interfaces


# -- the end --------------------------------------------------------------------

@hookimpl
def libcontainer_teardown(container):
    stash = container.stash.get(NAME, {})
    made = [(r["type"], r["record"]) for r in stash.get("records", []) if r.get("record")]
    errors = []
    if made and stash.get("netns", _host_netns()) != _host_netns():
        # names are only unique per namespace: never remove a namesake
        raise SetupError(f"the container's host-side interfaces were made in network "
                         f"namespace {stash['netns']}, not in this process's "
                         f"{_host_netns()}: destroy it from there")
    if made:
        registry = container.pm.registry
        with Context(container) as ctx:
            for typename, record in reversed(made):
                try:
                    typ = registry.get(KIND, typename)
                except PluginError as e:
                    errors.append(f"cannot remove {record}: {e}")
                    continue
                try:
                    if hasattr(typ, "teardown"):
                        typ.teardown(ctx, record)
                except Exception as e:
                    errors.append(f"{typename} {record}: {describe(e)}")
    if errors:
        raise SetupError("; ".join(errors))
    container.stash.pop(NAME, None)



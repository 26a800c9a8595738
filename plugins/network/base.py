"""What a network type is, and what it is handed: the context with its
netlink sockets, and the checks every type shares.

Nothing here imports pyroute2: the sockets are opened on first use, so a
container whose networks never touch them (loopback) never pays its import.
"""
import os

from libcontainer.errors import ConfigError, SetupError


class NetworkType:
    """A kind of network (``network.type`` in the config). Register one with
    ``registry.add("network_type", "<name>", obj)`` in a plugin's
    ``libcontainer_register`` hook. Every method is optional; they are called
    once per configured network of this type, in this order:

    ``validate(network, where, config)``
        parent, from ``factory.create``; raise ``ConfigError`` naming
        ``where`` + the field (``"networks[0].address: ..."``). May fill
        defaults into ``network`` (it is saved as given back).
    ``create(ctx, network, record)``
        parent, before the child exists, in the host's network namespace:
        ``ctx.host`` is an IPRoute there. Put what you made in ``record``
        (a JSON-serialisable dict) as soon as it exists -- not before: on
        any failure, teardown removes what the record names.
    ``attach(ctx, network, record)``
        parent, once the child has its network namespace and waits:
        ``ctx.pid`` is the child, ``ctx.inside`` an IPRoute in its netns.
    ``setup_in_child(network)``
        the container's init, in its namespaces, before exec. Only the
        standard library: pyroute2 is not imported there.
    ``teardown(ctx, record)``
        any process, after the container's processes are gone; idempotent.
        Only called for a non-empty ``record``.
    """

    def validate(self, network, where, config):
        pass


class Context:
    """What a type's parent-side methods get: the container, the child's pid
    (0 before the clone and at teardown) and netlink sockets opened on first
    use and closed by the plugin after the phase."""

    def __init__(self, container, pid=0):
        self.container = container
        self.pid = pid
        self._host = None
        self._inside = None

    @property
    def host(self):
        """An IPRoute in the network namespace of this process (the host's)."""
        if self._host is None:
            from . import netlink
            self._host = netlink.IPRoute()
        return self._host

    @property
    def inside(self):
        """An IPRoute in the container's network namespace."""
        if self._inside is None:
            if not self.pid:
                raise SetupError("the container's network namespace does not exist yet")
            from . import netlink
            self._inside = netlink.open_in(f"/proc/{self.pid}/ns/net")
        return self._inside

    def close(self):
        # a socket left open in the container's netns would keep it alive
        for ipr in (self._host, self._inside):
            if ipr is not None:
                ipr.close()
        self._host = self._inside = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def describe(exc):
    """One line for an error from a netlink call or a syscall."""
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code > 0:
        return os.strerror(code).lower()
    if isinstance(exc, OSError):
        return (exc.strerror or str(exc)).lower()
    return str(exc) or type(exc).__name__


# -- checks shared by the types --------------------------------------------

IFNAMSIZ = 16


def check_ifname(value, where):
    """An interface name the kernel accepts (dev_valid_name)."""
    if not value or value in (".", ".."):
        raise ConfigError(f"{where}: {value!r} is not a valid interface name")
    if len(value.encode()) >= IFNAMSIZ:
        raise ConfigError(f"{where}: interface name {value!r} is longer than "
                          f"{IFNAMSIZ - 1} characters")
    if any(c in value for c in "/:") or any(c.isspace() for c in value):
        raise ConfigError(f"{where}: interface name {value!r} contains '/', ':' or a space")


def check_cidr(value, where, version):
    """'10.0.0.2/24' -> ipaddress.IPv4Interface (or v6); the prefix is required."""
    import ipaddress
    ipv = "IPv4" if version == 4 else "IPv6"
    if "/" not in value:
        raise ConfigError(f"{where}: {value!r} is not an {ipv} address in CIDR notation "
                          f"(e.g. {'10.0.0.2/24' if version == 4 else 'fd00::2/64'})")
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an {ipv} address in CIDR "
                          f"notation") from None
    if iface.version != version:
        raise ConfigError(f"{where}: {value!r} is not an {ipv} address")
    return iface


def check_ip(value, where, version=None):
    import ipaddress
    try:
        ip = ipaddress.ip_address(value)
    except ValueError:
        raise ConfigError(f"{where}: {value!r} is not an IP address") from None
    if version and ip.version != version:
        raise ConfigError(f"{where}: {value!r} is not an IPv{version} address")
    return ip


def check_mac(value, where):
    parts = value.split(":")
    if len(parts) != 6 or not all(len(p) == 2 and _hex(p) for p in parts):
        raise ConfigError(f"{where}: {value!r} is not a MAC address (e.g. 02:42:ac:11:00:02)")
    first = int(parts[0], 16)
    if first & 1:
        raise ConfigError(f"{where}: {value!r} is a multicast address")
    if not any(int(p, 16) for p in parts):
        raise ConfigError(f"{where}: {value!r} is the all-zero address")


def _hex(text):
    try:
        int(text, 16)
        return True
    except ValueError:
        return False


def host_has_interface(name):
    """Whether an interface `name` exists in this process's network namespace
    (an ioctl: no netlink needed)."""
    import socket
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False

"""A network type for libcontainer from another package: ``dummy``, an
interface inside the container that leads nowhere, with a fixed address (a
stable address for a service, whatever the real network). It lives and dies
with the container's network namespace: nothing on the host to remove."""
from libcontainer import hookimpl
from libcontainer.plugins.network import NetworkType
from libcontainer.plugins.network.base import check_cidr, check_ifname

EOPNOTSUPP = 95


class Dummy(NetworkType):
    def validate(self, network, where, config):
        network.name = network.name or "dummy0"
        check_ifname(network.name, f"{where}.name")
        if network.address:
            check_cidr(network.address, f"{where}.address", 4)

    def attach(self, ctx, network, record):
        ns = ctx.inside        # an IPRoute in the container's network namespace
        try:
            ns.link("add", ifname=network.name, kind="dummy")
        except Exception as e:
            if getattr(e, "code", None) != EOPNOTSUPP:
                raise
            # a kernel built without the dummy driver: an ifb device is just as inert
            ns.link("add", ifname=network.name, kind="ifb")
        (idx,) = ns.link_lookup(ifname=network.name)
        if network.address:
            ip, prefix = network.address.split("/")
            ns.addr("add", index=idx, address=ip, prefixlen=int(prefix))
        ns.link("set", index=idx, state="up")


@hookimpl
def libcontainer_register(registry):
    registry.add("network_type", "dummy", Dummy())

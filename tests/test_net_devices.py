"""OCI linux.netDevices: a host interface moved into the container's network
namespace (renamed, with its addresses) and back to the host at delete."""
import socket
import uuid

import pytest

from libcontainer import specconv
from libcontainer.errors import ConfigError

from conftest import TOKEN, host_mounts, unique

pyroute2 = pytest.importorskip("pyroute2")


def _exists(name):
    try:
        socket.if_nametoindex(name)
        return True
    except OSError:
        return False


@pytest.fixture
def dummy():
    """One end of a veth pair (this kernel has no dummy links), with an
    address, named lcd<run token><random>; its peer stays on the host."""
    name = f"lcd{TOKEN}{uuid.uuid4().hex[:5]}"
    with pyroute2.IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer={"ifname": name + "p"})
        idx = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=idx, address="192.0.2.7", prefixlen=24)
        ipr.link("set", index=idx, state="up")
    yield name
    with pyroute2.IPRoute() as ipr:
        for end in (name, name + "p"):      # one end takes the other with it
            for idx in ipr.link_lookup(ifname=end):
                ipr.link("del", index=idx)


def _addresses(ipr, name):
    idx = ipr.link_lookup(ifname=name)[0]
    up = bool(ipr.link("get", index=idx)[0]["flags"] & 1)
    return up, sorted(f"{m.get_attr('IFA_ADDRESS')}/{m['prefixlen']}"
                      for m in ipr.get_addr(index=idx, family=socket.AF_INET))


def test_device_moves_in_renamed_and_comes_back_at_delete(tmp_path, rootfs, dummy):
    from test_pyrunc import Runtime
    from libcontainer.plugins.network import netlink
    rt = Runtime(tmp_path, rootfs)

    def edit(spec):
        spec["linux"]["netDevices"] = {dummy: {"name": "ctr0"}}
    try:
        cid, _ = rt.running(("sleep", "100"), edit=edit)
        pid = rt.state(cid)["pid"]
        assert not _exists(dummy)
        inside = netlink.open_in(f"/proc/{pid}/ns/net")
        try:
            assert _addresses(inside, "ctr0") == (True, ["192.0.2.7/24"])
        finally:
            inside.close()
        r = rt.ok("exec", cid, "cat", "/sys/class/net/ctr0/operstate", "/proc/net/dev")
        assert "ctr0" in r.stdout and dummy not in r.stdout
        rt.ok("delete", "--force", cid)
    finally:
        rt.cleanup()
    assert not host_mounts(rt.root)
    with pyroute2.IPRoute() as ipr:
        assert _addresses(ipr, dummy) == (True, ["192.0.2.7/24"])


def test_device_comes_back_when_the_container_exited_first(tmp_path, rootfs, dummy):
    # the namespace is held: the dummy is not destroyed with it
    from test_pyrunc import Runtime
    rt = Runtime(tmp_path, rootfs)

    def edit(spec):
        spec["linux"]["netDevices"] = {dummy: {}}
    cid, bundle = rt.bundle(("sh", "-c", f"cat /sys/class/net/{dummy}/ifindex"), edit=edit)
    try:
        r = rt("run", "--bundle", bundle, cid)
    finally:
        leftovers = rt.cleanup()
    assert r.returncode == 0 and r.stdout.strip().isdigit(), r
    assert _exists(dummy)
    assert not leftovers and not host_mounts(rt.root)      # the hold is gone too


def test_device_comes_back_when_create_fails(tmp_path, rootfs, dummy):
    from test_pyrunc import Runtime
    rt = Runtime(tmp_path, rootfs)

    def edit(spec):
        spec["linux"]["netDevices"] = {dummy: {"name": "ctr0"}}
    cid, bundle = rt.bundle(("/nonexistent",), edit=edit)
    try:
        r = rt("create", "--bundle", bundle, cid)
    finally:
        leftovers = rt.cleanup()
    # the init failed after the device was moved in (its program is missing)
    assert r.returncode == 1 and r.stderr.count("\n") == 1 and "nonexistent" in r.stderr, r
    assert not leftovers and not host_mounts(rt.root)
    with pyroute2.IPRoute() as ipr:
        assert _addresses(ipr, dummy) == (True, ["192.0.2.7/24"])


@pytest.mark.parametrize("devices, namespaces, message", [
    ({"lcdnonexistent0": {}}, None,
     "networks[1].host_interface_name: no interface 'lcdnonexistent0' on the host"),
    ({"lo": {"name": "a/b"}}, None, "networks[1].name: interface name 'a/b' contains"),
    ({"lo": {}}, None, "networks[1].name: 'lo' is the loopback interface"),
    ({"lo": {}}, ["pid", "mount"], "config.json: linux.netDevices: needs a network namespace"),
])
def test_bad_net_devices_are_refused_by_name(factory, rootfs, devices, namespaces, message):
    s = specconv.default_spec()
    s["root"]["path"] = rootfs
    s["linux"]["netDevices"] = devices
    if namespaces:
        s["linux"]["namespaces"] = [{"type": t} for t in namespaces]
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), specconv.to_config(s, "/srv/bundle", unique()))
    assert str(e.value).startswith(message), e.value

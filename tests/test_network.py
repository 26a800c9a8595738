"""Networks: loopback, veth pairs on bridges, joining a netns, routes, stats,
teardown, errors, and a network type from another package.

Every test that makes host-side interfaces runs in a network namespace of
its own (the `hostnet` fixture): the "host" ends, bridges and all traffic
stay there, never on the machine's real network.
"""
import os
import random
import shutil
import subprocess
import sys
import uuid

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux.namespaces import CLONE, setns, unshare

from conftest import BIN, REPO, TOKEN, nsinit, unique

pyroute2 = pytest.importorskip("pyroute2")


def ifname(tag):
    """A unique interface name of at most 15 characters, lct-prefixed."""
    return f"lct{TOKEN}{tag[:2]}{uuid.uuid4().hex[:4]}"


def subnet():
    """A random /24 of 198.18.0.0/15 (reserved for benchmarking: routed
    nowhere) and a random IPv6 ULA /64: prefix strings to append to."""
    n = random.randrange(512)
    return (f"198.{18 + n // 256}.{n % 256}.",
            f"fd{random.randrange(256):02x}:{int(TOKEN[:4], 16):x}::")


@pytest.fixture
def hostnet():
    """Put this test process in a fresh network namespace for the test; yield
    an IPRoute there. Checks on leaving that only `lo` remains."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    unshare(CLONE.NEWNET)
    ipr = pyroute2.IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()
        setns(own, CLONE.NEWNET)
        os.close(own)


def links(ipr):
    return sorted(link.get("ifname") for link in ipr.link("dump"))


def veth(name, bridge="", address="", gateway="", **kw):
    return configs.Network(type="veth", name="eth0", bridge=bridge, host_interface_name=name,
                           address=address, gateway=gateway, **kw)


def start(factory, config, args=("sleep", "300")):
    container = factory.create(unique("net"), config)
    try:
        with open(os.devnull, "wb") as null:
            container.start(libcontainer.Process(args=list(args), stdout=null))
    except BaseException:
        container.destroy()
        raise
    return container


def sh(container, script, tmp_path):
    """Run `script` in the running container; (exit status, output)."""
    out = tmp_path / f"out-{uuid.uuid4().hex[:6]}"
    with open(out, "wb") as o:
        process = libcontainer.Process(args=["sh", "-c", script], stdout=o, stderr=o)
        container.run(process)
        status = process.wait()
    return status, out.read_text()


# -- veth pairs on a bridge ---------------------------------------------------

def test_two_containers_on_a_bridge(factory, make_config, hostnet, tmp_path):
    v4, v6 = subnet()
    br = ifname("br")
    hosts = [ifname("h1"), ifname("h2")]
    macs = ["02:42:c6:00:00:0a", "02:42:c6:00:00:0b"]

    def config(n):
        return make_config(networks=[
            configs.Network(type="loopback"),
            veth(hosts[n], bridge=br, address=f"{v4}{n + 2}/24", gateway=f"{v4}1",
                 ipv6_address=f"{v6}{n + 2}/64", ipv6_gateway=f"{v6}1",
                 mtu=1400, mac_address=macs[n])])

    c1 = start(factory, config(0))
    try:
        c2 = start(factory, config(1))
        try:
            # the bridge was made, given the gateway addresses, and holds both ends
            (bridge,) = hostnet.link_lookup(ifname=br)
            ports = sorted(link.get("ifname") for link in hostnet.link("dump", master=bridge))
            assert ports == sorted(hosts)
            addrs = {a.get("address") for a in hostnet.addr("dump", index=bridge)}
            assert {f"{v4}1", f"{v6}1"} <= addrs

            status, out = sh(c1, "ip addr show eth0; ip route; ip -6 route", tmp_path)
            assert status == 0, out
            assert "mtu 1400" in out and f"link/ether {macs[0]}" in out
            assert f"inet {v4}2/24" in out and f"inet6 {v6}2/64" in out
            assert f"default via {v4}1 dev eth0" in out and f"default via {v6}1 dev eth0" in out

            pings = (f"ping -c1 -W5 {v4}3 && ping6 -c1 -W5 {v6}3 && "
                     f"ping -c1 -W5 {v4}1 && ping6 -c1 -W5 {v6}1 && ping -c1 -W5 127.0.0.1")
            status, out = sh(c1, pings, tmp_path)
            assert status == 0, out
            status, out = sh(c2, f"ping -c1 -W5 {v4}2 && ping6 -c1 -W5 {v6}2", tmp_path)
            assert status == 0, out

            stats = c1.stats()["network"]
            assert set(stats) == {"lo", "eth0"}
            assert set(stats["eth0"]) == {"rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
                                          "tx_bytes", "tx_packets", "tx_errors", "tx_dropped"}
            assert stats["eth0"]["tx_packets"] >= 4 and stats["eth0"]["rx_bytes"] > 0
            assert stats["lo"]["tx_packets"] >= 1
        finally:
            c2.destroy()
        # the bridge stays while c1 is attached
        assert links(hostnet) == sorted(["lo", br, hosts[0]])
    finally:
        c1.destroy()
    assert links(hostnet) == ["lo"]


def test_existing_bridge_generated_name_and_routes(factory, make_config, hostnet, tmp_path):
    v4, _ = subnet()
    br = ifname("br")
    hostnet.link("add", ifname=br, kind="bridge")
    (idx,) = hostnet.link_lookup(ifname=br)
    hostnet.addr("add", index=idx, address=f"{v4}1", prefixlen=24)
    hostnet.link("set", index=idx, state="up")
    config = make_config(
        networks=[configs.Network(type="loopback"),
                  configs.Network(type="veth", name="net0", bridge=br, address=f"{v4}9/24")],
        routes=[configs.Route(destination="198.51.100.0/24", gateway=f"{v4}1"),
                configs.Route(destination="203.0.113.0/24", interface_name="net0")])
    c = start(factory, config)
    try:
        (host_end,) = [link.get("ifname") for link in hostnet.link("dump", master=idx)]
        assert host_end.startswith("veth") and len(host_end) <= 15
        status, out = sh(c, f"ip route; ping -c1 -W5 {v4}1", tmp_path)
        assert status == 0, out
        assert f"198.51.100.0/24 via {v4}1 dev net0" in out
        assert "203.0.113.0/24 dev net0" in out
    finally:
        c.destroy()
    # the generated end is gone; a bridge the plugin did not make stays
    assert links(hostnet) == sorted(["lo", br])
    hostnet.link("del", index=idx)


def test_netns_network_joins_a_running_container(factory, make_config, hostnet, tmp_path):
    v4, _ = subnet()
    host = ifname("h")
    c1 = start(factory, make_config(networks=[veth(host, address=f"{v4}2/24")]))
    try:
        namespaces = [configs.Namespace(t) for t in ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID")]
        path = f"/proc/{c1.init_pid}/ns/net"
        c2 = start(factory, make_config(
            namespaces=namespaces, networks=[configs.Network(type="netns", path=path)]))
        try:
            assert c2.config.namespace("NEWNET").path == path
            status, out = sh(c2, "ip addr show eth0", tmp_path)
            assert status == 0 and f"inet {v4}2/24" in out, out
        finally:
            c2.destroy()
        assert host in links(hostnet)        # joining took nothing away
    finally:
        c1.destroy()
    assert links(hostnet) == ["lo"]


# -- pyroute2 only when needed --------------------------------------------------

DRIVER = """
import sys
from libcontainer.cli.nsinit import cli
try:
    cli(sys.argv[1:])
except SystemExit as e:
    code = e.code
print("pyroute2 imported:", "pyroute2" in sys.modules, file=sys.stderr)
sys.exit(code)
"""


@pytest.mark.parametrize("networks,imported", [
    ([], False),
    ([configs.Network(type="loopback")], False),
    ([configs.Network(type="loopback"), veth("")], True),
], ids=["none", "loopback", "veth"])
def test_pyroute2_is_imported_only_for_netlink_networks(make_config, state_root, tmp_path,
                                                         hostnet, networks, imported):
    make_config(networks=networks).save(tmp_path / "container.json")
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    proc = subprocess.run(
        [sys.executable, str(driver), "--root", state_root, "exec", "--id", unique("lo"),
         "--config", str(tmp_path / "container.json"), "ip", "addr", "show", "lo"],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"pyroute2 imported: {imported}" in proc.stderr
    if networks:      # lo is up, with its address
        assert "inet 127.0.0.1/8" in proc.stdout and ",UP" in proc.stdout
    assert links(hostnet) == ["lo"]


# -- errors: one line, the field, nothing left behind --------------------------

@pytest.mark.parametrize("network,message", [
    (dict(address="198.18.0.2"), "networks[1].address: '198.18.0.2' is not an IPv4 address "
                                 "in CIDR notation"),
    (dict(address="198.18.0.300/24"), "networks[1].address:"),
    (dict(address="fd00::2/64"), "networks[1].address: 'fd00::2/64' is not an IPv4 address"),
    (dict(ipv6_address="10.0.0.2/8"), "networks[1].ipv6_address:"),
    (dict(address="10.0.0.2/8", gateway="fd00::1"), "networks[1].gateway:"),
    (dict(gateway="10.0.0.1"), "networks[1].gateway: needs address"),
    (dict(mac_address="01:00:5e:00:00:01"), "networks[1].mac_address: '01:00:5e:00:00:01' is "
                                            "a multicast address"),
    (dict(mac_address="02:42:zz:00:00:01"), "networks[1].mac_address:"),
    (dict(mtu=20), "networks[1].mtu: 20 is not between 68 and 65535"),
    (dict(name="averyverylongname0"), "networks[1].name: interface name 'averyverylongname0' "
                                      "is longer than 15 characters"),
    (dict(name="lo"), "networks[1].name: 'lo' is the loopback"),
    (dict(host_interface_name="bad/name"), "networks[1].host_interface_name:"),
    (dict(type="nosuch"), "networks[1].type: no network type named 'nosuch' (available: "
                          "loopback, netdevice, netns, veth)"),
    (dict(type="netns", path="/nonexistent/lct"), "networks[1].path: /nonexistent/lct does "
                                                  "not exist"),
    (dict(type="netns", path="/etc/hostname"), "networks[1].path: /etc/hostname is not a "
                                               "network namespace"),
    (dict(type="netns", name="lct-no-such-netns"), "networks[1].name: "
                                                   "/run/netns/lct-no-such-netns does not exist"),
    (dict(name="eth0"), "networks[1].name: 'eth0' is also the name of networks[0]"),
])
def test_bad_network_config(factory, make_config, network, message):
    network = {"type": "veth", **network}
    if network["type"] == "veth":
        network.setdefault("name", "eth1")
    config = make_config(networks=[configs.Network(type="veth", name="eth0"),
                                   configs.Network(**network)])
    with pytest.raises(ConfigError) as err:
        factory.create(unique(), config)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert factory.list() == []


@pytest.mark.parametrize("route,message", [
    (dict(destination="10.0.0.0/33", gateway="10.0.0.1"), "routes[0].destination:"),
    (dict(destination="10.0.0.1/8", gateway="10.0.0.1"), "routes[0].destination:"),
    (dict(destination="10.0.0.0/8", gateway="fd00::1"), "routes[0]: mixes IPv4 and IPv6"),
    (dict(destination="10.0.0.0/8", interface_name="eth9"), "routes[0].interface_name: no "
                                                            "network is named 'eth9'"),
    (dict(destination="default"), "routes[0]: needs a gateway or an interface_name"),
])
def test_bad_route(factory, make_config, route, message):
    config = make_config(networks=[configs.Network(type="loopback")],
                         routes=[configs.Route(**route)])
    with pytest.raises(ConfigError) as err:
        factory.create(unique(), config)
    assert message in str(err.value)


def test_network_needs_a_netns(factory, make_config):
    config = make_config(namespaces=[configs.Namespace("NEWNS")],
                         networks=[configs.Network(type="loopback")])
    with pytest.raises(ConfigError, match=r"^networks: needs a network namespace"):
        factory.create(unique(), config)


def test_host_name_clash(factory, make_config, hostnet):
    taken = ifname("tk")
    hostnet.link("add", ifname=taken, kind="bridge")
    # seen at validation...
    with pytest.raises(ConfigError, match=rf"^networks\[0\]\.host_interface_name: an "
                                          rf"interface named '{taken}' already exists"):
        factory.create(unique(), make_config(networks=[veth(taken)]))
    # ...or, made meanwhile, at start: the error names it and teardown leaves it be
    late = ifname("lt")
    container = factory.create(unique(), make_config(networks=[veth(late)]))
    hostnet.link("add", ifname=late, kind="bridge")
    try:
        with pytest.raises(SetupError, match=rf"^networks\[0\]\.host_interface_name: an "
                                             rf"interface named '{late}' already exists"):
            container.start(libcontainer.Process(args=["true"]))
    finally:
        container.destroy()
    assert links(hostnet) == sorted(["lo", taken, late])
    for name in (taken, late):
        hostnet.link("del", ifname=name)


def test_bridge_that_is_not_a_bridge(factory, make_config, hostnet):
    other = ifname("ot")
    hostnet.link("add", ifname=other, kind="veth", peer=ifname("op"))
    before = links(hostnet)
    container = factory.create(unique(), make_config(networks=[veth(ifname("h"), bridge=other)]))
    try:
        with pytest.raises(SetupError, match=rf"^networks\[0\]\.bridge: '{other}' exists on "
                                             rf"the host and is not a bridge$"):
            container.start(libcontainer.Process(args=["true"]))
    finally:
        container.destroy()
    assert links(hostnet) == before
    hostnet.link("del", ifname=other)


def test_failure_after_clone_removes_what_was_made(factory, make_config, hostnet):
    """The gateway is unreachable: the default route fails in post_clone; the
    veth pair and the bridge the plugin made are removed."""
    v4, _ = subnet()
    config = make_config(networks=[veth(ifname("h"), bridge=ifname("br"),
                                        address=f"{v4}2/24", gateway="192.0.2.1")])
    container = factory.create(unique(), config)
    try:
        with pytest.raises(SetupError, match=r"^networks\[0\]\.gateway: default route via "
                                             r"192\.0\.2\.1 .*: network is unreachable$"):
            container.start(libcontainer.Process(args=["true"]))
    finally:
        container.destroy()
    assert links(hostnet) == ["lo"]


def test_cli_bad_cidr_is_one_line(make_config, state_root, tmp_path):
    config = make_config(networks=[configs.Network(type="loopback"),
                                   veth("", address="10.1.2.3/40")])
    config.save(tmp_path / "container.json")
    proc = nsinit("exec", "--id", unique(), "--config", str(tmp_path / "container.json"),
                  "true", root=state_root)
    assert proc.returncode == 1
    assert proc.stderr == ("nsinit: networks[1].address: '10.1.2.3/40' is not an IPv4 "
                           "address in CIDR notation\n")


def test_teardown_from_another_process(make_config, state_root, tmp_path, hostnet):
    """Started detached by one nsinit, destroyed by another: the state's stash
    tells the second what to remove."""
    host, br = ifname("h"), ifname("br")
    v4, _ = subnet()
    make_config(networks=[veth(host, bridge=br, address=f"{v4}2/24", gateway=f"{v4}1")]) \
        .save(tmp_path / "container.json")
    cid = unique("detached")
    try:
        # the detached init keeps the stdio it is given: no pipes here
        with open(tmp_path / "err", "wb") as err:
            proc = subprocess.run([os.path.join(BIN, "nsinit"), "--root", state_root, "exec",
                                   "-d", "--id", cid, "--config",
                                   str(tmp_path / "container.json"), "sleep", "300"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, timeout=60)
        assert proc.returncode == 0, (tmp_path / "err").read_text()
        assert {host, br} <= set(links(hostnet))
    finally:
        proc = nsinit("destroy", "--force", cid, root=state_root)
    assert proc.returncode == 0, proc.stderr
    assert links(hostnet) == ["lo"]


# -- a network type from another package ----------------------------------------

EXAMPLE = os.path.join(REPO, "examples", "libcontainer-dummy-net")
DUMMY_DRIVER = """
import sys
import libcontainer
from libcontainer import configs
config = configs.Config.load(sys.argv[2])
factory = libcontainer.new(sys.argv[1])
try:
    container = factory.create(sys.argv[3], config)
except libcontainer.ConfigError as e:
    print("error:", e)
    sys.exit(2)
try:
    process = libcontainer.Process(args=["ip", "addr", "show", "dummy0"])
    container.start(process)
    sys.exit(process.wait())
finally:
    container.destroy()
"""


def test_third_party_network_type(make_config, state_root, tmp_path):
    src, target = tmp_path / "src", tmp_path / "site"
    shutil.copytree(EXAMPLE, src, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--no-build-isolation", "--target", str(target), str(src)],
                   check=True, capture_output=True, timeout=120)
    lines = (target / "libcontainer_dummy_net.py").read_text().splitlines()
    assert len(lines) < 50
    v4, _ = subnet()
    make_config(networks=[configs.Network(type="loopback"),
                          configs.Network(type="dummy", address=f"{v4}7/24")]) \
        .save(tmp_path / "container.json")
    (tmp_path / "driver.py").write_text(DUMMY_DRIVER)
    env = dict(os.environ, PYTHONPATH=str(target))

    def drive(**extra):
        return subprocess.run([sys.executable, str(tmp_path / "driver.py"), state_root,
                               str(tmp_path / "container.json"), unique("dummy")],
                              env={**env, **extra}, capture_output=True, text=True, timeout=60)

    proc = drive()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"inet {v4}7/24" in proc.stdout and "UP" in proc.stdout
    proc = drive(LIBCONTAINER_DISABLE_PLUGINS="dummy-net")
    assert proc.returncode == 2
    assert proc.stdout == ("error: networks[1].type: no network type named 'dummy' "
                           "(available: loopback, netdevice, netns, veth); is the plugin that "
                           "provides it installed and enabled?\n")


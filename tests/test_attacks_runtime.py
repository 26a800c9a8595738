"""Attacks on what the runtime reads or acts on after the container could
have a say (issue 15, the re-read): files the image supplies where the
runtime expects its own procfs once the root has changed, the network
device a container can rename before it is moved back to the host, an
endless user database; each mounted on a real container."""
import os
import subprocess
import uuid

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import SetupError
from libcontainer.linux import statx

from conftest import TOKEN, unique

NS = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]


@pytest.fixture
def rootfs_copy(rootfs, tmp_path):
    path = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", rootfs, str(path)], check=True)
    return str(path)


def config(rootfs, mounts=None, **kw):
    """No procfs at /proc: what lies there is the image's."""
    if mounts is None:
        mounts = [m for m in configs.default_mounts() if m.device != "proc"]
    kw.setdefault("namespaces", [configs.Namespace(t) for t in NS])
    return configs.Config(rootfs=rootfs, mounts=mounts, **kw)


def plant(rootfs, path, content=""):
    full = os.path.join(rootfs, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(content)
    return full


@pytest.fixture
def held(factory):
    made = []

    def create(cfg, process):
        c = factory.create(unique(), cfg)
        made.append(c)
        c.start(process, hold=True)
        return c
    yield create
    for c in made:
        c.destroy()


# -- the exec fifo reopened through the image's /proc ------------------------

def test_held_init_waits_for_start_whatever_the_image_has_at_proc(rootfs_copy, held):
    """A held init reopened its exec fifo as /proc/self/fd/N after
    pivot_root: with no procfs there, the image's regular file answered, so
    the program ran at once, before `start` (which then failed or hung)."""
    decoys = [plant(rootfs_copy, f"/proc/self/fd/{n}") for n in range(64)]
    r, w = os.pipe()
    try:
        c = held(config(rootfs_copy),
                 libcontainer.Process(args=["/bin/sh", "-c", "echo ran"], stdout=w))
        os.close(w)
        w = None
        c.exec()
        assert os.read(r, 100) == b"ran\n"
    finally:
        os.close(r)
        if w is not None:
            os.close(w)
    assert [d for d in decoys if os.path.getsize(d)] == []


# -- the exec check's mount list read from the image -------------------------

def test_exec_check_does_not_take_the_images_mountinfo(rootfs_copy, factory, tmp_path):
    """The exec check (CVE-2019-5736) accepted a file on any mount listed in
    /proc/self/mountinfo: with no procfs at /proc the image's own list, which
    can name every host mount. Here a procfs at /altproc leads to a host
    file passed as an fd."""
    host_file = tmp_path / "host-script"
    host_file.write_text("#!/bin/sh\necho escaped\n")
    host_file.chmod(0o755)
    fake = "".join(f"{i} 1 0:1 / /m{i} rw - tmpfs tmpfs rw\n" for i in range(1, 5000))
    assert statx.mount_id(str(host_file)) < 5000
    plant(rootfs_copy, "/proc/self/mountinfo", fake)
    mounts = [m for m in configs.default_mounts() if m.device != "proc"] + \
        [configs.Mount("proc", "/altproc", "proc")]
    fd = os.open(host_file, os.O_RDONLY)
    os.dup2(fd, 40)     # fd 40 in the runtime and in the program: seen by both checks
    c = factory.create(unique(), config(rootfs_copy, mounts=mounts))
    try:
        with pytest.raises(SetupError, match="refusing to execute a file from outside"):
            c.start(libcontainer.Process(args=["/altproc/self/fd/40"], extra_fds=[40] * 38))
    finally:
        c.destroy()
        os.close(40)
        os.close(fd)


# -- oom_score_adj written to the image's file -------------------------------

def test_oom_score_adj_applies_without_a_procfs_at_proc(rootfs_copy, factory):
    """oom_score_adj was written to /proc/self/oom_score_adj after
    pivot_root: the image's regular file took it, and the program kept the
    runtime's score (a daemon's -999: the host's OOM killer spares it)."""
    decoy = plant(rootfs_copy, "/proc/self/oom_score_adj")
    c = factory.create(unique(), config(rootfs_copy, oom_score_adj=789))
    try:
        p = libcontainer.Process(args=["/bin/sleep", "1000"])
        c.start(p)
        with open(f"/proc/{p.pid}/oom_score_adj") as f:
            assert f.read().strip() == "789"
    finally:
        c.destroy()
    assert os.path.getsize(decoy) == 0


# -- linux.netDevices: which device goes back to the host --------------------

def _veth(name):
    """One end of a veth pair on the host (this kernel has no dummy links),
    with an address, up; its peer `name`p stays on the host."""
    import pyroute2
    with pyroute2.IPRoute() as ipr:
        ipr.link("add", ifname=name, kind="veth", peer={"ifname": name + "p"})
        idx = ipr.link_lookup(ifname=name)[0]
        ipr.addr("add", index=idx, address="192.0.2.7", prefixlen=24)
        ipr.link("set", index=idx, state="up")


def _del_links(*names):
    import pyroute2
    with pyroute2.IPRoute() as ipr:
        for name in names:
            for idx in ipr.link_lookup(ifname=name):
                ipr.link("del", index=idx)


@pytest.fixture
def host_veth():
    pytest.importorskip("pyroute2")
    made = []

    def make():
        name = f"lcd{TOKEN}{uuid.uuid4().hex[:5]}"
        _veth(name)
        made.append(name)
        return name
    yield make
    _del_links(*made, *(n + "p" for n in made))


def _is_the_original(name):
    """`name` on the host is the veth whose peer `name`p is on the host,
    with its address, up."""
    import pyroute2
    with pyroute2.IPRoute() as ipr:
        found = ipr.link_lookup(ifname=name)
        if not found:
            return False
        link = ipr.link("get", index=found[0])[0]
        peer = ipr.link_lookup(ifname=name + "p")
        addresses = [m.get_attr("IFA_ADDRESS") for m in ipr.get_addr(index=found[0])]
        return (link.get_attr("IFLA_LINK") in peer and link.get_attr("IFLA_LINK_NETNSID") is None
                and "192.0.2.7" in addresses and bool(link["flags"] & 1))


def test_net_device_moved_back_is_the_one_moved_in(tmp_path, rootfs, host_veth):
    """Teardown picked the device to move back by its name in the
    container's namespace: a container with CAP_NET_ADMIN renamed the real
    one and made its own under that name, which the runtime then moved into
    the host under the host device's name, with its addresses, up."""
    from test_pyrunc import Runtime
    from libcontainer.plugins.network import netlink
    dev = host_veth()
    rt = Runtime(tmp_path, rootfs)

    def edit(spec):
        spec["linux"]["netDevices"] = {dev: {"name": "ctr0"}}
    try:
        cid, _ = rt.running(("sleep", "100"), edit=edit)
        # what the container's root does (here through its namespace)
        inside = netlink.open_in(f"/proc/{rt.state(cid)['pid']}/ns/net")
        try:
            idx = netlink.index(inside, "ctr0")
            inside.link("set", index=idx, state="down")
            inside.link("set", index=idx, ifname="real0")
            inside.link("add", ifname="ctr0", kind="veth", peer={"ifname": "fake0"})
        finally:
            inside.close()
        rt.ok("delete", "--force", cid)
    finally:
        rt.cleanup()
    assert _is_the_original(dev)


def test_net_device_named_like_another_host_device(tmp_path, rootfs, host_veth):
    """A device named in the container like another host interface: the
    move back renames it to its host name at once (the other holds the
    name), and the runtime then took the other host interface for it."""
    from test_pyrunc import Runtime
    dev, other = host_veth(), host_veth()
    rt = Runtime(tmp_path, rootfs)

    def edit(spec):
        spec["linux"]["netDevices"] = {dev: {"name": other}}
    try:
        cid, _ = rt.running(("sleep", "100"), edit=edit)
        rt.ok("delete", "--force", cid)
    finally:
        rt.cleanup()
    assert _is_the_original(dev) and _is_the_original(other)



# -- the image's user database read whole -----------------------------------

def test_huge_user_database_is_not_read_whole(rootfs_copy, factory):
    """/etc/passwd is read by the init as root before the program runs: a
    sparse file of gigabytes (one endless line) took that much memory --
    the host's, without a memory limit. Here the limit shows it."""
    with open(os.path.join(rootfs_copy, "etc/passwd"), "w") as f:
        f.truncate(2 << 30)
    mb = 1 << 20
    cg = configs.Cgroup(path=f"/{unique('cg')}", resources=configs.Resources(
        memory=128 * mb, memory_swap=128 * mb))
    c = factory.create(unique(), config(rootfs_copy, mounts=configs.default_mounts(),
                                        cgroups=cg))
    try:
        p = libcontainer.Process(args=["/bin/true"], user="1000:1000")
        c.start(p)
        assert p.wait() == 0
    finally:
        c.destroy()

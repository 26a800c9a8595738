"""Bad input, generated: malformed container.json (wrong types, missing
fields, huge values, path traversal, unknown names, invalid CIDRs), bad
container ids and signals. Each must give a one-line error naming the field,
a non-zero exit status, no traceback and nothing left behind.

Most examples go through config loading in-process (``Config.from_dict`` +
``factory.create``, which validates); a few through ``nsinit exec``. The
``soak`` variants run many more examples (make soak).
"""
import copy
import json
import os
import types
import typing

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import libcontainer
from libcontainer import configs, sample
from libcontainer.errors import LibcontainerError

from conftest import TOKEN, copy_rootfs, nsinit, unique


@pytest.fixture(autouse=True)
def _soak_only_when_asked(request):
    if request.node.get_closest_marker("soak") and \
            "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("long run: make soak")


FAST = settings(max_examples=500, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
SOAK = settings(FAST, max_examples=20000)
CLI = settings(FAST, max_examples=20)


# --------------------------------------------------------------------------
# a valid config that uses (nearly) every field
# --------------------------------------------------------------------------

def base_config(rootfs, bind_source):
    data = sample.config_dict(rootfs)
    data["cgroups"] = configs.asdict(configs.Cgroup(
        path=f"/{unique('fz')}", resources=configs.Resources(
            memory=64 << 20, memory_swap=128 << 20, cpu_shares=512, cpu_quota=50000,
            cpu_period=100000, cpuset_cpus="0", pids_limit=64,
            blkio_weight_device=[configs.WeightDevice(8, 0, 100)],
            blkio_throttle_read_bps_device=[configs.ThrottleDevice(8, 0, 1 << 20)])))
    data["networks"] = [
        {"type": "loopback"},
        {"type": "veth", "name": "eth0", "host_interface_name": f"lct{TOKEN}fz0",
         "address": "10.254.8.2/24", "gateway": "10.254.8.1", "mtu": 1500,
         "mac_address": "02:42:ac:11:00:02"}]
    data["routes"] = [{"destination": "10.254.9.0/24", "gateway": "10.254.8.1"}]
    data["mounts"].append({"source": bind_source, "destination": "/mnt/data", "device": "bind",
                           "flags": ["rbind", "ro"], "propagation": ["rprivate"]})
    data["devices"].append({"type": "c", "path": "/dev/mynull", "major": 1, "minor": 3,
                            "file_mode": 0o600})
    data["rlimits"].append({"type": "NPROC", "hard": 512, "soft": 256})
    data["sysctl"] = {"net.ipv4.ip_forward": "1", "kernel.msgmax": "8192"}
    data["hooks"] = {"prestart": [{"path": "/bin/true", "args": ["true"], "timeout": 5}]}
    data["uid_mappings"] = []
    data["labels"] = {"purpose": "fuzz"}
    return data


@pytest.fixture(scope="module")
def base(rootfs, tmp_path_factory):
    data = base_config(rootfs, str(tmp_path_factory.mktemp("bind")))
    return data


@pytest.fixture(scope="module")
def factory(tmp_path_factory):
    root = tmp_path_factory.mktemp("state")
    f = libcontainer.new(str(root))
    yield f
    assert os.listdir(root) == [], "state dirs left behind"


def _made():
    """cgroups and interfaces named for this run: validation makes none."""
    cgroups = set()
    for point in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        for ctrl in os.listdir(point) if os.path.isdir(point) else []:
            path = os.path.join(point, ctrl)
            if os.path.isdir(path):
                cgroups.update(n for n in os.listdir(path) if TOKEN in n)
    return cgroups | {n for n in os.listdir("/sys/class/net") if TOKEN in n}


@pytest.fixture(scope="module", autouse=True)
def nothing_made():
    before = _made()
    yield
    assert _made() == before


def test_base_config_is_valid(base, factory):
    """The examples below break one thing in this config, so it must pass."""
    config = configs.Config.from_dict(copy.deepcopy(base))
    factory.validate(config)


# --------------------------------------------------------------------------
# the config's shape, from the record classes
# --------------------------------------------------------------------------

def _args(tp):
    return [a for a in typing.get_args(tp) if a is not type(None)]


def _is_union(tp):
    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def fits(tp, value):
    """Would configs' typed loader accept `value` for `tp` (shape only)?"""
    if _is_union(tp):
        return (value is None and type(None) in typing.get_args(tp)) or \
            any(fits(a, value) for a in _args(tp))
    origin = typing.get_origin(tp)
    if origin is list:
        return isinstance(value, list) and all(fits(_args(tp)[0], v) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(fits(typing.get_args(tp)[1], v)
                                               for v in value.values())
    if configs.is_record(tp):
        if not isinstance(value, dict):
            return False
        hints = typing.get_type_hints(tp)
        return all((f.name in value and fits(hints[f.name], value[f.name])) or
                   (f.name not in value and (f.default is not configs.MISSING or
                                             f.default_factory is not configs.MISSING))
                   for f in configs.fields(tp))
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool) and \
            -(1 << 63) <= value < (1 << 64)
    if tp is str:
        return isinstance(value, str) and "\0" not in value
    if tp is dict:
        return isinstance(value, dict)
    raise TypeError(tp)


def fields_of(tp, value, path=()):
    """(path, type, required, named) of every field present in `value`, and
    of the required ones; `named` is the path an error must name (a union
    of shapes, like capabilities, is named as a whole)."""
    out = []

    def walk(tp, value, path, named):
        if _is_union(tp):
            alts = _args(tp)
            if len(alts) > 1:
                named = named or path
            match = next((a for a in alts if fits(a, value)), None)
            if match is not None:
                walk(match, value, path, named)
            return
        origin = typing.get_origin(tp)
        if origin is list and isinstance(value, list):
            for i, v in enumerate(value):
                out.append((path + (i,), _args(tp)[0], True, named))
                walk(_args(tp)[0], v, path + (i,), named)
        elif origin is dict and isinstance(value, dict):
            for k, v in value.items():
                vt = typing.get_args(tp)[1]
                out.append((path + (k,), vt, False, named))
                walk(vt, v, path + (k,), named)
        elif configs.is_record(tp) and isinstance(value, dict):
            hints = typing.get_type_hints(tp)
            for f in configs.fields(tp):
                required = f.default is configs.MISSING and \
                    f.default_factory is configs.MISSING
                if f.name in value:
                    out.append((path + (f.name,), hints[f.name], required, named))
                    walk(hints[f.name], value[f.name], path + (f.name,), named)

    walk(tp, value, path, None)
    return out


def show(path):
    text = ""
    for p in path:
        text += f"[{p}]" if isinstance(p, int) else (f".{p}" if text else p)
    return text


def put(data, path, value=None, delete=False):
    data = copy.deepcopy(data)
    node = data
    for p in path[:-1]:
        node = node[p]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


# --------------------------------------------------------------------------
# what must be refused
# --------------------------------------------------------------------------

def refused(factory, data, field, cid=None):
    """`data` must be refused with one line naming `field`; nothing made."""
    cid = cid or unique("fz")
    try:
        config = configs.Config.from_dict(data)
        container = factory.create(cid, config)
    except LibcontainerError as e:
        message = str(e)
        assert len(message.splitlines()) == 1, message
        assert field in message, f"{message!r} does not name {field!r}"
        assert not os.path.exists(os.path.join(factory.root, cid))
        return message
    container.destroy()
    pytest.fail(f"accepted, but {field} is invalid")


JSON = st.recursive(st.none() | st.booleans() | st.integers() |
                    st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda children: st.lists(children, max_size=3) |
                    st.dictionaries(st.text(max_size=8), children, max_size=3),
                    max_leaves=6)


@st.composite
def wrong_type(draw, base):
    """Any field, given a value of the wrong shape."""
    shape = fields_of(configs.Config, base)
    path, tp, _, named = draw(st.sampled_from(shape))
    value = draw(JSON | st.sampled_from([1 << 64, -(1 << 63) - 1, 10 ** 30, "x\0y", 1.5,
                                         True, None, [], {}]))
    assume(not fits(tp, value))
    return put(base, path, value), show(named or path)


@st.composite
def missing(draw, base):
    """A required field left out."""
    required = [(p, n) for p, _, req, n in fields_of(configs.Config, base) if req and
                isinstance(p[-1], str)]
    required.append((("rootfs",), None))
    path, named = draw(st.sampled_from(required))
    return put(base, path, delete=True), show(named or path)


def _names(known):
    return st.text(st.characters(codec="ascii", categories=["L", "N", "P"]), min_size=1,
                   max_size=20).filter(lambda s: s.upper() not in known and
                                       ("CAP_" + s.upper()) not in known)


CIDRS = st.sampled_from(["10.0.0.1/33", "300.1.1.1/24", "10.0.0.1", "::1/200", "fe80::1",
                         "10.0.0.0/8/8", "", " ", "10.0.0.1/-1", "abc/24", "10.0.0.1/24 "]) | \
    st.text(max_size=20)


@st.composite
def bad_value(draw, base):
    """A value of the right type that no plugin may accept: unknown names,
    traversal, huge or negative numbers, invalid addresses."""
    from libcontainer.linux.namespaces import NAMESPACES
    from libcontainer.plugins import rlimits
    from libcontainer.plugins.rootfs import FLAGS, PROPAGATION
    kind = draw(st.sampled_from([
        "namespace", "rlimit", "mount-flag", "propagation", "relative-dest",
        "rootfs", "cgroup-traversal", "cgroup-name", "cidr", "gateway", "route", "mtu",
        "ifname", "cpu-shares", "cpu-period", "blkio-weight", "cpuset", "pids", "memory-swap",
        "device-type", "device-path", "file-mode", "hostname", "sysctl", "hook-path",
        "mask-path", "seccomp", "rlimit-range", "mac", "propagation-root", "freezer",
        "hugetlb", "unified", "hook-name", "soft-over-hard", "idmap", "network-type",
        "namespace-path", "cgroup-driver"]))
    d = copy.deepcopy(base)
    if kind == "namespace":
        name = draw(_names(set(NAMESPACES)))
        d["namespaces"].append({"type": name})
        return d, f"namespaces[{len(d['namespaces']) - 1}].type"
    if kind == "rlimit":
        name = draw(_names({f"RLIMIT_{n}" for n in rlimits.NAMES} | set(rlimits.NAMES)))
        assume(rlimits.rlimit_number(name) is None)
        d["rlimits"][0]["type"] = name
        return d, "rlimits[0].type"
    if kind == "rlimit-range":
        field = draw(st.sampled_from(["soft", "hard"]))
        d["rlimits"][0][field] = draw(st.integers(max_value=-2) | st.integers(min_value=1 << 64))
        return d, "rlimits[0]"
    if kind == "soft-over-hard":
        d["rlimits"][0].update(soft=2000, hard=draw(st.integers(0, 1999)))
        return d, "rlimits[0]"
    if kind == "mount-flag":
        d["mounts"][0]["flags"].append(draw(_names(set(FLAGS)).filter(lambda s: s not in FLAGS)))
        return d, "mounts[0].flags"
    if kind == "propagation":
        d["mounts"][-1]["propagation"] = [draw(st.text(max_size=10).filter(
            lambda s: s not in PROPAGATION))]
        return d, f"mounts[{len(d['mounts']) - 1}].propagation"
    if kind == "propagation-root":
        d["rootfs_propagation"] = draw(st.text(max_size=10).filter(lambda s: s not in PROPAGATION))
        return d, "rootfs_propagation"
    if kind == "relative-dest":
        dest = draw(st.sampled_from(["../../etc", "..", "etc/x", "./proc", "", "../" * 8 + "tmp"]))
        i = draw(st.integers(0, len(d["mounts"]) - 1))
        d["mounts"][i]["destination"] = dest
        return d, f"mounts[{i}].destination"
    if kind == "rootfs":
        d["rootfs"] = draw(st.sampled_from(["", "rootfs", "../rootfs", "/nonexistent-lct",
                                            "/etc/passwd"]))
        return d, "rootfs"
    if kind == "cgroup-traversal":
        field = draw(st.sampled_from(["path", "parent"]))
        d["cgroups"][field] = draw(st.sampled_from(["/../../x", "/a/../../b", "../x", "/.."]))
        return d, f"cgroups.{field}"
    if kind == "cgroup-name":
        d["cgroups"].update(path="", name=draw(st.sampled_from(["a/b", "..", "../x"])))
        return d, "cgroups.name"
    if kind == "cidr":
        value = draw(CIDRS)
        assume(value and not _valid_cidr(value, 4))     # "": no address
        d["networks"][1]["address"] = value
        return d, "networks[1].address"
    if kind == "gateway":
        value = draw(CIDRS)
        assume(value and not _valid_ip(value))
        d["networks"][1]["gateway"] = value
        return d, "networks[1].gateway"
    if kind == "route":
        value = draw(CIDRS)
        assume(value != "default" and not _valid_network(value))
        d["routes"][0]["destination"] = value
        return d, "routes[0].destination"
    if kind == "mac":
        d["networks"][1]["mac_address"] = draw(st.sampled_from(
            ["02:42", "zz:zz:zz:zz:zz:zz", "01:00:5e:00:00:01", "00:00:00:00:00:00", "x"]))
        return d, "networks[1].mac_address"
    if kind == "mtu":
        d["networks"][1]["mtu"] = draw(st.integers(max_value=67).filter(lambda n: n != 0) |
                                       st.integers(min_value=65536))
        return d, "networks[1].mtu"
    if kind == "ifname":
        field = draw(st.sampled_from(["name", "host_interface_name"]))
        d["networks"][1][field] = draw(st.sampled_from(
            ["a" * 16, "a/b", "a b", "a:b", ".", "..", "lo" if field == "name" else "a/b"]))
        return d, f"networks[1].{field}"
    if kind == "cpu-shares":
        d["cgroups"]["resources"]["cpu_shares"] = draw(st.sampled_from([1, 262145, 10 ** 12]))
        return d, "cgroups.resources.cpu_shares"
    if kind == "cpu-period":
        d["cgroups"]["resources"]["cpu_period"] = draw(st.integers(1, 999) |
                                                       st.integers(min_value=1000001))
        return d, "cgroups.resources.cpu_period"
    if kind == "blkio-weight":
        d["cgroups"]["resources"]["blkio_weight_device"][0]["weight"] = \
            draw(st.integers(max_value=9) | st.integers(min_value=1001))
        return d, "cgroups.resources.blkio_weight_device[0].weight"
    if kind == "cpuset":
        d["cgroups"]["resources"]["cpuset_cpus"] = draw(st.sampled_from(
            ["a", "0-", "-1", "0,,1", "1-2-3", "0;1"]))
        return d, "cgroups.resources.cpuset_cpus"
    if kind == "pids":
        d["cgroups"]["resources"]["pids_limit"] = draw(st.integers(max_value=-2))
        return d, "cgroups.resources.pids_limit"
    if kind == "memory-swap":
        d["cgroups"]["resources"]["memory_swap"] = draw(st.integers(1, (64 << 20) - 1))
        return d, "cgroups.resources.memory_swap"
    if kind == "freezer":
        d["cgroups"]["resources"]["freezer"] = draw(st.text(max_size=8).filter(
            lambda s: s not in ("", "FROZEN", "THAWED")))
        return d, "cgroups.resources.freezer"
    if kind == "hugetlb":
        d["cgroups"]["resources"]["hugetlb_limit"] = [
            {"page_size": draw(st.sampled_from(["2M", "big", "", "1GiB"])), "limit": 1}]
        return d, "cgroups.resources.hugetlb_limit[0]"
    if kind == "unified":
        key = draw(st.sampled_from(["cgroup.procs", "../memory.max", "memory max", "x"]))
        d["cgroups"]["resources"]["unified"] = {key: "1"}
        return d, "cgroups.resources.unified"
    if kind == "device-type":
        d["devices"][-1]["type"] = draw(st.text(max_size=3).filter(lambda s: s not in "cbp"
                                                                     or s == ""))
        return d, f"devices[{len(d['devices']) - 1}].type"
    if kind == "device-path":
        d["devices"][-1]["path"] = draw(st.sampled_from(
            ["/etc/passwd", "dev/x", "/", "", "/dev", "../dev/x", "/dev/../etc/shadow",
             "/dev/pts/../../etc/x"]))
        return d, f"devices[{len(d['devices']) - 1}].path"
    if kind == "file-mode":
        d["devices"][-1]["file_mode"] = draw(st.integers(max_value=-1) |
                                             st.integers(min_value=0o10000))
        return d, f"devices[{len(d['devices']) - 1}].file_mode"
    if kind == "hostname":
        d["hostname"] = draw(st.sampled_from(["a" * 65, "a b", "a/b", "-x", "x\ny", "é"]))
        return d, "hostname"
    if kind == "sysctl":
        key = draw(st.sampled_from(["kernel.hostname", "vm.swappiness", "../../etc",
                                    "kernel..x", "net/../x", "fs.file-max"]))
        d["sysctl"] = {key: "1"}
        return d, "sysctl"
    if kind == "hook-path":
        d["hooks"]["prestart"][0]["path"] = draw(st.sampled_from(["true", "../bin/true", ""]))
        return d, "hooks.prestart[0].path"
    if kind == "hook-name":
        name = draw(st.text(min_size=1, max_size=12).filter(lambda s: s not in (
            "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
            "poststop")))
        d["hooks"] = {name: [{"path": "/bin/true"}]}
        return d, "hooks"
    if kind == "mask-path":
        field = draw(st.sampled_from(["mask_paths", "readonly_paths"]))
        d[field] = [draw(st.sampled_from(["proc/kcore", "../proc", "", "x"]))]
        return d, f"{field}[0]"
    if kind == "idmap":
        field = draw(st.sampled_from(["uid_mappings", "gid_mappings"]))
        d[field] = [{"container_id": draw(st.integers(-5, 5)), "host_id": draw(st.integers(-5, 5)),
                     "size": draw(st.integers(-5, 0))}]
        return d, field
    if kind == "network-type":
        name = draw(st.text(max_size=10).filter(lambda s: s not in ("loopback", "veth",
                                                                     "netns")))
        d["networks"].append({"type": name})
        return d, f"networks[{len(d['networks']) - 1}].type"
    if kind == "namespace-path":
        i = draw(st.integers(0, len(d["namespaces"]) - 1))
        d["namespaces"][i]["path"] = draw(st.sampled_from(
            ["/proc/../nonexistent-lct", "/nonexistent-lct/ns/net", "relative/ns"]))
        return d, f"namespaces[{i}].path"
    if kind == "cgroup-driver":
        d["cgroups"]["driver"] = draw(st.text(min_size=1, max_size=10).filter(
            lambda s: s not in ("v1", "v2", "systemd")))
        return d, "cgroups.driver"
    if kind == "seccomp":
        d["seccomp"] = draw(_bad_seccomp())
        return d, "seccomp"
    raise AssertionError(kind)


@st.composite
def _bad_seccomp(draw):
    choice = draw(st.integers(0, 5))
    if choice == 0:
        return draw(st.dictionaries(st.text(max_size=8), JSON, max_size=3).filter(
            lambda p: "defaultAction" not in p))
    profile = {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"}]}
    if choice == 1:
        profile["defaultAction"] = draw(st.text(max_size=16))
        assume(not profile["defaultAction"].startswith("SCMP_ACT_"))
    elif choice == 2:
        profile["syscalls"][0]["names"] = [draw(st.text(min_size=1, max_size=16).filter(
            lambda s: not s.isidentifier()))]
    elif choice == 3:
        profile["architectures"] = [draw(st.text(max_size=12).filter(
            lambda s: not s.startswith("SCMP_ARCH_")))]
    elif choice == 4:
        index = draw(st.integers(6) | st.integers(max_value=-1))
        profile["syscalls"][0]["args"] = [{"index": index, "value": 1, "op": "SCMP_CMP_EQ"}]
    else:
        # (a falsy value counts as absent, as null does)
        profile["syscalls"] = draw(JSON.filter(lambda v: v and not isinstance(v, list)))
    return profile


def _valid_cidr(value, version):
    import ipaddress
    if "/" not in value:
        return False
    try:
        return ipaddress.ip_interface(value).version == version
    except ValueError:
        return False


def _valid_ip(value):
    import ipaddress
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _valid_network(value):
    import ipaddress
    try:
        ipaddress.ip_network(value)
        return True
    except ValueError:
        return False


def malformed(base):
    return st.one_of(wrong_type(base), missing(base), bad_value(base))


# --------------------------------------------------------------------------
# in-process
# --------------------------------------------------------------------------

def _check_examples(base, factory, strategy, config):
    @config
    @given(strategy(base))
    def check(example):
        data, field = example
        refused(factory, data, field)
    check()


def test_wrong_types(base, factory):
    _check_examples(base, factory, wrong_type, FAST)


def test_missing_fields(base, factory):
    _check_examples(base, factory, missing, FAST)


def test_bad_values(base, factory):
    _check_examples(base, factory, bad_value, settings(FAST, max_examples=1500))


@pytest.mark.soak
def test_malformed_soak(base, factory):
    _check_examples(base, factory, malformed, SOAK)


# -- found by the examples above

@pytest.mark.parametrize("path", ["/dev/../etc/passwd", "/dev/x/../../bin/sh"])
def test_device_path_traversal(base, factory, path):
    """Was accepted: setup_devices then replaced <rootfs>/etc/passwd (the
    image, outside the container's /dev tmpfs) with a device node."""
    d = copy.deepcopy(base)
    d["devices"][-1]["path"] = path
    refused(factory, d, f"devices[{len(d['devices']) - 1}].path")


def test_gid_mappings_named(base, factory):
    """Was: 'uid_mappings: ...' when only gid_mappings was set."""
    d = copy.deepcopy(base)
    d["gid_mappings"] = [{"container_id": 0, "host_id": 1000, "size": 1}]
    refused(factory, d, "gid_mappings")


@pytest.mark.parametrize("value", [-1001, 1001, 1 << 40])
def test_oom_score_adj_range(base, factory, value):
    refused(factory, {**copy.deepcopy(base), "oom_score_adj": value}, "oom_score_adj")


IDS = st.one_of(
    st.sampled_from(["", ".", "..", "../x", "a/b", "/abs", "x" * 129, ".hidden", "-dash",
                     "a\0b", "a b", "a\nb", "ü"]),
    st.text(max_size=140).filter(lambda s: not _valid_id(s)))


def _valid_id(s):
    import re
    return bool(re.match(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$", s)) and ".." not in s


@FAST
@given(IDS)
def test_bad_ids(base, factory, cid):
    """Ids with traversal or odd characters never name a directory."""
    with pytest.raises(LibcontainerError, match="invalid container id") as e:
        factory.create(cid, configs.Config.from_dict(copy.deepcopy(base)))
    assert "\n" not in str(e.value)
    with pytest.raises(LibcontainerError, match="invalid container id"):
        factory.load(cid)


@FAST
@given(st.text(max_size=12))
def test_signals(text):
    from libcontainer.cli.common import parse_signal
    import signal
    try:
        num = parse_signal(text)
    except LibcontainerError as e:
        assert str(e).startswith("invalid signal") and "\n" not in str(e)
    else:       # any number (0: is it alive?), as runc: the kernel judges it
        assert 0 <= num < 1 << 31 and (num < signal.NSIG or text.strip().isdigit())


# --------------------------------------------------------------------------
# through nsinit
# --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tmp_path_factory.mktemp("bundle")


def _nsinit_refuses(base, bundle, data):
    config, field = data.draw(malformed(base))
    (bundle / "container.json").write_text(json.dumps(config))
    root = bundle / "state"
    r = nsinit("exec", "--id", unique("fz"), "/bin/true", root=str(root), cwd=bundle)
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert r.stderr.startswith("nsinit: ") and field in r.stderr, (field, r.stderr)
    assert not root.exists() or os.listdir(root) == []


@CLI
@given(data=st.data())
def test_nsinit_exec_refuses(base, bundle, data):
    _nsinit_refuses(base, bundle, data)


@pytest.mark.soak
@settings(CLI, max_examples=300)
@given(data=st.data())
def test_nsinit_exec_refuses_soak(base, bundle, data):
    _nsinit_refuses(base, bundle, data)


@settings(CLI, max_examples=4)
@given(cid=IDS.filter(lambda s: "\0" not in s and not s.startswith("-")))
def test_nsinit_bad_ids(bundle, cid):
    (bundle / "canary").write_text("alive")
    root = bundle / "ids" / "state"
    root.mkdir(parents=True, exist_ok=True)
    for args in (["state", cid], ["destroy", "--force", cid], ["kill", cid]):
        r = nsinit(*args, root=str(root))
        assert r.returncode != 0 and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert (bundle / "canary").read_text() == "alive" and root.is_dir()


@settings(CLI, max_examples=4)
@given(sig=st.text(min_size=1, max_size=10).filter(lambda s: not s.startswith("-")))
def test_nsinit_kill_bad_signal(bundle, sig):
    from libcontainer.cli.common import parse_signal
    try:
        parse_signal(sig)
        assume(False)
    except LibcontainerError:
        pass
    r = nsinit("kill", "lct-nosuch", sig, root=str(bundle / "sig"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr


# --------------------------------------------------------------------------
# traversal that is valid: it must stay inside the rootfs
# --------------------------------------------------------------------------

def test_mount_destination_traversal_is_contained(rootfs, tmp_path):
    """An absolute destination with '..' or through a symlink planted in the
    rootfs resolves inside the rootfs (as runc's securejoin): accepted, and
    nothing appears on the host."""
    image = copy_rootfs(rootfs, tmp_path / "rootfs")
    os.symlink("../../../../../../..", image / "evil")
    name = unique("escape")
    mounts = configs.default_mounts() + [
        configs.Mount("tmpfs", f"/../../../{name}-a", "tmpfs"),
        configs.Mount("tmpfs", f"/evil/{name}-b", "tmpfs"),
        configs.Mount("tmpfs", f"/evil/tmp/../{name}-c", "tmpfs")]
    config = configs.Config(rootfs=str(image), mounts=mounts,
                            namespaces=[configs.Namespace(t) for t in ("NEWNS", "NEWPID")])
    config.save(tmp_path / "container.json")
    r = nsinit("exec", "--id", unique(), "/bin/sh", "-c",
               f"grep -c {name} /proc/mounts", root=str(tmp_path / "state"), cwd=tmp_path)
    assert (r.returncode, r.stdout.strip()) == (0, "3"), r.stderr
    for suffix in "abc":
        assert not os.path.exists(f"/{name}-{suffix}")
        assert not os.path.exists(f"/tmp/{name}-{suffix}")
    # '..' stops at the rootfs; the symlink's target is resolved inside it
    assert sorted(n for n in os.listdir(image) if name in n) == \
        [f"{name}-a", f"{name}-b", f"{name}-c"]

"""Confinement: capabilities, users, no_new_privs, seccomp, masked and
read-only paths, sysctls (LSM fields: tests/test_lsm.py) -- and the attacks
runc has suffered, run from inside real containers."""
import hashlib
import json
import os
import re
import select
import shutil
import subprocess
import sys

import pytest

import libcontainer
from libcontainer import configs, hookimpl, sample
from libcontainer.errors import ConfigError, SetupError
from libcontainer.linux import caps

from conftest import REPO, capture, nsinit, read_all, unique

DEFAULT_CAPS = list(sample.DEFAULT_CAPABILITIES)
NS = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET"]


def mask(names):
    return sum(1 << caps.number(n) for n in names)


def status_caps(text):
    """{'CapEff': int, ...} from /proc/PID/status text."""
    return {k: int(v, 16) for k, v in re.findall(r"^(Cap\w+):\s+([0-9a-f]+)$", text, re.M)}


def status_field(text, name):
    return re.search(rf"^{name}:\s+(\S+)", text, re.M).group(1)


def with_tmp(**kw):
    """Config keywords adding a tmpfs on /tmp: tests never write into the
    shared rootfs."""
    kw.setdefault("mounts", configs.default_mounts() + [configs.Mount("tmpfs", "/tmp", "tmpfs")])
    return kw


@pytest.fixture
def sh(run, make_config):
    """sh(script, process keywords..., config keywords via cfg={...})"""
    def sh(script, cfg=None, **kw):
        config = make_config(**with_tmp(**(cfg or {})))
        return run(["/bin/sh", "-c", script], config=config, **kw)
    return sh


@pytest.fixture
def rootfs_copy(rootfs, tmp_path):
    """A private copy of the busybox rootfs (cp -a, ~2 MB) to plant traps in."""
    path = tmp_path / "rootfs"
    subprocess.run(["cp", "-a", rootfs, str(path)], check=True)
    return str(path)


def in_copy(make_config, rootfs, **kw):
    config = make_config(**kw)
    config.rootfs = rootfs
    return config


@pytest.fixture
def running(factory, make_config):
    """A running container factory: running(**config keywords)."""
    made = []

    def make(**kw):
        c = factory.create(unique(), make_config(**with_tmp(**kw)))
        made.append(c)
        c.start(libcontainer.Process(args=["/bin/sleep", "1000"]))
        return c
    yield make
    for c in made:
        c.destroy()


MKDIR_DENIED = {"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 95}]}


# --------------------------------------------------------------------------
# capabilities
# --------------------------------------------------------------------------

def test_caps_list_form_is_exactly_the_status(sh):
    wanted = ["CHOWN", "cap_net_bind_service", "CAP_KILL"]
    status, out, err = sh("grep Cap /proc/self/status", cfg={"capabilities": wanted})
    assert status == 0, err
    m = mask(wanted)
    assert status_caps(out) == {"CapInh": m, "CapPrm": m, "CapEff": m, "CapBnd": m, "CapAmb": 0}


def test_caps_detailed_form_for_a_user_gives_ambient(sh):
    nbs = ["NET_BIND_SERVICE"]
    detailed = configs.Capabilities(bounding=["NET_BIND_SERVICE", "CHOWN", "SETUID"],
                                    effective=nbs, permitted=nbs, inheritable=nbs, ambient=nbs)
    status, out, err = sh("id -u; grep Cap /proc/self/status",
                          cfg={"capabilities": detailed}, user="1000")
    assert status == 0, err
    assert out.splitlines()[0] == "1000"
    m = mask(nbs)
    assert status_caps(out) == {"CapInh": m, "CapPrm": m, "CapEff": m, "CapAmb": m,
                                "CapBnd": mask(["NET_BIND_SERVICE", "CHOWN", "SETUID"])}


def test_caps_none_leaves_the_sets(sh):
    status, out, err = sh("grep Cap /proc/self/status", cfg={"capabilities": None})
    assert status == 0, err
    with open("/proc/self/status") as f:
        host = status_caps(f.read())
    assert status_caps(out)["CapBnd"] == host["CapBnd"]
    assert status_caps(out)["CapEff"] == host["CapEff"]


def test_process_capabilities_override_the_config(sh):
    status, out, err = sh("grep CapBnd /proc/self/status",
                          cfg={"capabilities": DEFAULT_CAPS}, capabilities=["CHOWN"])
    assert status == 0, err
    assert status_caps(out)["CapBnd"] == mask(["CHOWN"])


@pytest.mark.parametrize("value, message", [
    (configs.Capabilities(bounding=["CHOWN"], permitted=["CHOWN"], effective=["KILL"]),
     "capabilities.effective: KILL is not in the permitted set"),
    (configs.Capabilities(inheritable=["SYS_ADMIN"]),
     "capabilities.inheritable: SYS_ADMIN is not in the bounding set"),
])
def test_bad_capabilities_are_rejected(factory, make_config, value, message):
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), make_config(capabilities=value))
    assert str(e.value) == message


def test_unknown_capability_is_skipped_with_a_warning(sh, capfd):
    """runc warns about a name it does not know (a profile written for a
    newer kernel) and goes on."""
    from libcontainer import log
    log.configure()         # the logger writes to the captured stderr...
    try:
        status, out, err = sh("grep CapBnd /proc/self/status",
                              cfg={"capabilities": ["CHOWN", "CAP_FROM_THE_FUTURE"]})
    finally:
        log.configure()     # ... and not to it once closed
    assert status == 0, err
    assert status_caps(out)["CapBnd"] == mask(["CHOWN"])
    assert "capabilities[1]: unknown capability 'CAP_FROM_THE_FUTURE' skipped" in \
        capfd.readouterr().err


def test_no_capabilities_by_default_as_runc(factory, rootfs, tmp_path):
    """The library's default, and config.json without process.capabilities:
    no capabilities at all -- the same sets runc gives."""
    c = factory.create(unique(), configs.Config(rootfs=rootfs, namespaces=[
        configs.Namespace(t) for t in NS]))
    try:
        status, out = capture(c, ["grep", "Cap", "/proc/self/status"], join=False)
    finally:
        c.destroy()
    assert status == 0, out
    ours = status_caps(out)
    assert ours == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0}
    spec = _runc_spec(tmp_path, rootfs, ["grep", "Cap", "/proc/self/status"])
    del spec["process"]["capabilities"]
    assert _pyrunc_and_runc(tmp_path, spec, status_caps) == (ours, ours)


def _runc_spec(tmp_path, rootfs, args):
    from libcontainer import specconv
    spec = specconv.default_spec()
    spec["root"] = {"path": rootfs, "readonly": True}
    spec["process"].update(terminal=False, args=args)
    spec["linux"].pop("resources", None)
    return spec


def _pyrunc_and_runc(tmp_path, spec, parse):
    """Run `spec` with pyrunc and with runc (each its own --root): the
    parsed stdout of each."""
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    results = []
    for runtime in (os.path.join(REPO, ".venv", "bin", "pyrunc"), "/usr/sbin/runc"):
        cid = unique()
        spec["linux"]["cgroupsPath"] = f"/{cid}"
        (bundle / "config.json").write_text(json.dumps(spec))
        r = subprocess.run([runtime, "--root", str(tmp_path / f"state-{len(results)}"), "run",
                            "--bundle", str(bundle), cid], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        assert r.returncode == 0, f"{runtime}: {r.stderr}"
        results.append(parse(r.stdout))
    return tuple(results)


def test_exec_process_without_capabilities_as_runc(tmp_path, rootfs):
    """`exec --process FILE` whose process has no capabilities gets the
    container's (runc's setns process falls back to the config's)."""
    spec = _runc_spec(tmp_path, rootfs, ["sleep", "100"])
    spec["process"]["capabilities"] = {s: ["CAP_KILL", "CAP_CHOWN"] for s in
                                       ("bounding", "effective", "permitted")}
    process = tmp_path / "process.json"
    process.write_text(json.dumps({"args": ["grep", "Cap", "/proc/self/status"], "cwd": "/",
                                   "user": {"uid": 0, "gid": 0}, "env": ["PATH=/bin"]}))
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    results = []
    for runtime in (os.path.join(REPO, ".venv", "bin", "pyrunc"), "/usr/sbin/runc"):
        root, cid = str(tmp_path / f"state-{len(results)}"), unique()
        spec["linux"]["cgroupsPath"] = f"/{cid}"
        (bundle / "config.json").write_text(json.dumps(spec))
        rt = [runtime, "--root", root]
        try:
            # the init keeps the runtime's stdio: not pipes this waits on
            with open(tmp_path / "err", "w+") as err:
                r = subprocess.run([*rt, "run", "-d", "--bundle", str(bundle), cid],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=err, timeout=60)
                err.seek(0)
                assert r.returncode == 0, f"{runtime}: {err.read()}"
            r = subprocess.run([*rt, "exec", "--process", str(process), cid],
                               capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, f"{runtime}: {r.stderr}"
            results.append(status_caps(r.stdout))
        finally:
            subprocess.run([*rt, "delete", "--force", cid], capture_output=True, timeout=60)
    config = mask(["KILL", "CHOWN"])
    assert results[0] == results[1] == {"CapInh": 0, "CapPrm": config, "CapEff": config,
                                        "CapBnd": config, "CapAmb": 0}


def test_ambient_outside_inheritable_is_skipped_like_runc(sh):
    """runc's default spec lists ambient capabilities that are not
    inheritable: runc warns and goes on, and so do we."""
    cfg = {"capabilities": configs.Capabilities(bounding=["CHOWN", "KILL"],
                                                permitted=["CHOWN", "KILL"],
                                                effective=["CHOWN", "KILL"],
                                                inheritable=["KILL"], ambient=["CHOWN", "KILL"])}
    status, out, err = sh("grep CapAmb /proc/self/status", cfg=cfg, user="1000")
    assert status == 0, err
    assert status_caps(out)["CapAmb"] == mask(["KILL"])


def test_chown_fails_without_cap_chown(sh):
    script = "touch /tmp/f && chown 1000 /tmp/f && stat -c %u /tmp/f"
    status, out, err = sh(script, cfg={"capabilities": DEFAULT_CAPS})
    assert (status, out.strip()) == (0, "1000"), err
    without = [c for c in DEFAULT_CAPS if c != "CHOWN"]
    status, out, err = sh(script, cfg={"capabilities": without})
    assert status != 0
    assert "Operation not permitted" in err


def test_ping_needs_cap_net_raw(sh):
    # a loopback-only network namespace; NET_ADMIN to bring lo up
    script = "ip link set lo up && ping -c 1 127.0.0.1"
    status, out, err = sh(script, cfg={"capabilities": DEFAULT_CAPS + ["NET_ADMIN"]})
    assert status == 0, err
    assert "1 packets received" in out
    without = [c for c in DEFAULT_CAPS if c != "NET_RAW"] + ["NET_ADMIN"]
    status, out, err = sh(script, cfg={"capabilities": without})
    assert status != 0
    assert "permission denied" in err


# --------------------------------------------------------------------------
# user and groups (plugins/user.py), resolved in the container's files
# --------------------------------------------------------------------------

@pytest.mark.parametrize("user, expected", [
    ("daemon", "uid=1(daemon) gid=1(daemon)"),
    ("1000", "uid=1000(user) gid=1000(user)"),
    ("1000:1000", "uid=1000(user) gid=1000(user)"),
    ("user:users", "uid=1000(user) gid=100(users)"),
    ("nobody", "uid=65534(nobody) gid=65534(nogroup)"),
    ("4242", "uid=4242 gid=0(root)"),
])
def test_user_forms(sh, user, expected):
    status, out, err = sh("id", user=user)
    assert status == 0, err
    assert out.startswith(expected)


def test_user_gets_its_groups_home_and_additional_groups(sh):
    status, out, err = sh("id -G; echo $HOME", user="user", additional_groups=["tty", 42])
    assert status == 0, err
    groups, home = out.splitlines()
    assert set(groups.split()) == {"1000", "29", "100", "5", "42"}
    assert home == "/home/user"


def test_explicit_group_means_exactly_the_additional_gids_as_runc(sh, tmp_path, rootfs):
    """An OCI user is always uid:gid: the supplementary groups are exactly
    additionalGids, nothing from the image's /etc/group (uid 1000 is a
    member of tty, users there)."""
    status, out, err = sh("id -G", user="1000:1000", additional_groups=[42])
    assert status == 0, err
    assert sorted(out.split()) == ["1000", "42"]
    spec = _runc_spec(tmp_path, rootfs, ["id", "-G"])
    spec["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [42]}
    ours, runc = _pyrunc_and_runc(tmp_path, spec, lambda out: sorted(out.split()))
    assert ours == runc == ["1000", "42"]


def test_missing_cwd_is_created_as_runc(sh):
    status, out, err = sh("pwd; stat -c %u:%a .", user="1000", cwd="/tmp/new/deeper")
    assert status == 0, err
    assert out.split() == ["/tmp/new/deeper", "0:755"]


def test_cwd_only_the_user_may_enter_is_entered_as_the_user(sh):
    """runc enters the cwd before dropping privileges and again afterwards
    on EACCES: a directory the runtime's root may not enter (no
    DAC_OVERRIDE here) but the user may."""
    cfg = {"capabilities": ["SETUID", "SETGID"],
           "mounts": configs.default_mounts() + [
               configs.Mount("tmpfs", "/tmp", "tmpfs", data="mode=700,uid=1000,gid=1000")]}
    status, out, err = sh("pwd", cfg=cfg, user="1000:1000", cwd="/tmp")
    assert (status, out.strip()) == (0, "/tmp"), err


def test_cwd_umask_and_file_owner(sh):
    status, out, err = sh("pwd; umask; touch f; stat -c %u:%g:%a f",
                          user="1000", cwd="/tmp", umask=0o027)
    assert status == 0, err
    assert out.split() == ["/tmp", "0027", "1000:1000:640"]


@pytest.mark.parametrize("user, message", [
    ("nosuchuser", "user 'nosuchuser': no such user in the container's /etc/passwd"),
    ("user:nosuchgroup", "group 'nosuchgroup': no such group in the container's /etc/group"),
])
def test_unknown_user_is_a_clear_error(sh, user, message):
    with pytest.raises(SetupError) as e:
        sh("true", user=user)
    assert str(e.value) == message


def test_user_names_come_from_the_container(rootfs_copy, factory, make_config):
    with open(os.path.join(rootfs_copy, "etc/passwd"), "a") as f:
        f.write("lctonly:x:4321:4321::/:/bin/sh\n")
    c = factory.create(unique(), in_copy(make_config, rootfs_copy))
    try:
        status, out = capture(c, ["id", "-u"], join=False, user="lctonly")
    finally:
        c.destroy()
    assert (status, out.strip()) == (0, "4321")


# --------------------------------------------------------------------------
# no_new_privileges
# --------------------------------------------------------------------------

def test_no_new_privileges(sh):
    status, out, _ = sh("grep NoNewPrivs /proc/self/status", cfg={"no_new_privileges": True})
    assert status_field(out, "NoNewPrivs") == "1"
    status, out, _ = sh("grep NoNewPrivs /proc/self/status", cfg={"no_new_privileges": True},
                        no_new_privileges=False)
    assert status_field(out, "NoNewPrivs") == "0"
    status, out, _ = sh("grep NoNewPrivs /proc/self/status", no_new_privileges=True)
    assert status_field(out, "NoNewPrivs") == "1"


# --------------------------------------------------------------------------
# seccomp
# --------------------------------------------------------------------------

def test_seccomp_denies_mkdir_with_the_chosen_errno(sh):
    script = ("grep '^Seccomp:' /proc/self/status; mkdir /tmp/d; echo mkdir=$?; "
              "touch /tmp/f && ls /tmp && rm /tmp/f && echo rest-works")
    status, out, err = sh(script, cfg={"seccomp": MKDIR_DENIED,
                                       "capabilities": DEFAULT_CAPS})
    assert status == 0, err
    assert status_field(out, "Seccomp") == "2"
    assert "mkdir=1" in out
    assert "Operation not supported" in err      # errno 95
    assert "rest-works" in out


def test_seccomp_argument_filters(sh):
    # kill(2) with SIGUSR1 (10) or SIGUSR2 (12) is denied; two conditions on
    # one argument mean either; signal 0 still works
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["kill"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                             "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"},
                                      {"index": 1, "value": 12, "op": "SCMP_CMP_EQ"}]}]}
    script = ("trap '' USR1 USR2; kill -USR1 $$; echo usr1=$?; kill -USR2 $$; echo usr2=$?; "
              "kill -0 $$; echo zero=$?")
    status, out, err = sh(script, cfg={"seccomp": profile})
    assert status == 0, err
    assert out.split() == ["usr1=1", "usr2=1", "zero=0"]


def test_seccomp_without_no_new_privs_or_sys_admin(sh):
    # the filter needs CAP_SYS_ADMIN or no_new_privs to load; neither reaches
    # the program
    status, out, err = sh("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status",
                          cfg={"seccomp": MKDIR_DENIED, "capabilities": DEFAULT_CAPS,
                               "no_new_privileges": False})
    assert status == 0, err
    assert status_field(out, "Seccomp") == "2"
    assert status_field(out, "NoNewPrivs") == "0"
    assert int(status_field(out, "CapEff"), 16) == mask(DEFAULT_CAPS)


def test_seccomp_for_a_user_without_capabilities(sh):
    status, out, err = sh("grep '^Seccomp:' /proc/self/status; mkdir /tmp/x",
                          cfg={"seccomp": MKDIR_DENIED}, user="1000")
    assert status_field(out, "Seccomp") == "2"
    assert "Operation not supported" in err


@pytest.mark.parametrize("profile, message", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "seccomp.defaultAction: unknown action 'SCMP_ACT_NOPE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mk dir"], "action": "SCMP_ACT_ERRNO"}]},
     "seccomp.syscalls[0].names[0]: 'mk dir' is not a syscall name"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "seccomp.syscalls[0].args[0].index: 7 is not an argument index (0-5)"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ERRNO",
                    "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_LIKE"}]}]},
     "seccomp.syscalls[0].args[0].op: unknown operator 'SCMP_CMP_LIKE'"),
    ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
     "seccomp.architectures[0]: unknown architecture 'SCMP_ARCH_Z80'"),
    ({"defaultAction": "SCMP_ACT_ALLOW",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_ALLOW", "errnoRet": 1}]},
     "seccomp.syscalls[0].errnoRet: only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take an errno"),
])
def test_bad_seccomp_profiles_are_rejected(factory, make_config, profile, message):
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), make_config(seccomp=profile))
    assert str(e.value).startswith(message)


def test_syscall_unknown_to_libseccomp_is_skipped_as_runc(sh):
    """Engines' default profiles name syscalls newer than the host's
    libseccomp: runc skips those names, the rest of the rule applies."""
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir_from_the_future", "mkdir", "mkdirat"],
                             "action": "SCMP_ACT_ERRNO", "errnoRet": 95}]}
    status, out, err = sh("mkdir /tmp/d; echo mkdir=$?", cfg={"seccomp": profile})
    assert "mkdir=1" in out and "Operation not supported" in err


def test_default_seccomp_profile_blocks_namespaces_and_mounts(sh):
    with open(os.path.join(REPO, "sample_configs", "seccomp-default.json")) as f:
        profile = json.load(f)
    script = "unshare -m true; echo unshare=$?; mkdir /tmp/d && echo mkdir-ok"
    status, out, err = sh(script, cfg={"seccomp": profile, "capabilities": None})
    # even with every capability, the profile refuses unshare
    assert "unshare=1" in out and "mkdir-ok" in out, err


# --------------------------------------------------------------------------
# joined processes get the same confinement
# --------------------------------------------------------------------------

def test_joined_process_is_confined_too(running):
    c = running(capabilities=DEFAULT_CAPS, no_new_privileges=True, seccomp=MKDIR_DENIED)
    status, out = capture(c, ["/bin/sh", "-c", "grep -E '^(Cap|NoNewPrivs|Seccomp)' "
                                               "/proc/self/status; mkdir /tmp/x"])
    assert status == 1
    m = mask(DEFAULT_CAPS)
    assert status_caps(out) == {"CapInh": m, "CapPrm": m, "CapEff": m, "CapBnd": m, "CapAmb": 0}
    assert status_field(out, "NoNewPrivs") == "1"
    assert status_field(out, "Seccomp") == "2"
    assert "Operation not supported" in out
    status, out = capture(c, ["grep", "CapBnd", "/proc/self/status"], capabilities=["KILL"],
                          user="daemon")
    assert status_caps(out)["CapBnd"] == mask(["KILL"])


# --------------------------------------------------------------------------
# masked and read-only paths, sysctl, LSM
# --------------------------------------------------------------------------

def test_masked_and_readonly_paths(sh):
    script = ("wc -c < /proc/keys; ls -A /sys/firmware | wc -l; ls -A /home | wc -l; "
              "touch /home/x; echo 1 > /proc/sys/net/ipv4/ip_forward; "
              "grep -c ' /proc/sys ro,' /proc/self/mountinfo; "
              "head -c 16 /proc/kcore | wc -c; echo b > /proc/sysrq-trigger; echo end")
    status, out, err = sh(script, cfg={
        "mask_paths": configs.DEFAULT_MASK_PATHS + ["/proc/keys", "/home"],
        "readonly_paths": configs.DEFAULT_READONLY_PATHS, "capabilities": DEFAULT_CAPS})
    assert out.split() == ["0", "0", "0", "1", "0", "end"], err
    assert "/home/x: Read-only file system" in err
    assert "ip_forward: Read-only file system" in err
    assert "sysrq-trigger" in err


def test_sysctl_of_the_containers_namespaces(sh):
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        host_forward = f.read()
    script = "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max"
    status, out, err = sh(script, cfg={
        "sysctl": {"net.ipv4.ip_forward": "1", "kernel/shmmax": "123456789",
                   "fs.mqueue.msg_max": "42"},
        "readonly_paths": configs.DEFAULT_READONLY_PATHS})
    assert status == 0, err
    assert out.split() == ["1", "123456789", "42"]
    with open("/proc/sys/net/ipv4/ip_forward") as f:
        assert f.read() == host_forward


@pytest.mark.parametrize("sysctl, namespaces, message", [
    ({"kernel.panic": "1"}, NS, "sysctl.kernel.panic: not a namespaced sysctl"),
    ({"vm.swappiness": "1"}, NS, "sysctl.vm.swappiness: not a namespaced sysctl"),
    ({"net.ipv4.ip_forward": "1"}, ["NEWNS", "NEWPID"],
     "sysctl.net.ipv4.ip_forward: needs a NEWNET namespace"),
    ({"kernel.shmmax": "1"}, ["NEWNS"], "sysctl.kernel.shmmax: needs a NEWIPC namespace"),
    ({"kernel.domainname": "x"}, ["NEWNS"], "sysctl.kernel.domainname: needs a NEWUTS"),
    ({"net..x": "1"}, NS, "sysctl.net..x: 'net..x' is not a valid sysctl name"),
    ({"kernel.hostname": "x"}, NS, "sysctl.kernel.hostname: conflicts with the config's"),
])
def test_sysctl_outside_the_namespaces_is_refused(factory, make_config, sysctl, namespaces,
                                                  message):
    config = make_config(sysctl=sysctl, namespaces=[configs.Namespace(t) for t in namespaces])
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), config)
    assert str(e.value).startswith(message)


def test_sysctl_refused_when_joining_the_hosts_netns(factory, make_config):
    config = make_config(sysctl={"net.ipv4.ip_forward": "1"}, hostname="",
                         namespaces=[configs.Namespace("NEWNS"),
                                     configs.Namespace("NEWNET", "/proc/self/ns/net")])
    with pytest.raises(ConfigError, match="joins the host's NEWNET namespace"):
        factory.create(unique(), config)


# --------------------------------------------------------------------------
# attacks from inside that must fail
# --------------------------------------------------------------------------

def test_cannot_mount_load_modules_or_raise_rlimits(sh):
    script = ("mount -t tmpfs t /mnt; echo mount=$?; "
              "printf '\\177ELF' > /tmp/m.ko; insmod /tmp/m.ko; echo insmod=$?; "
              "ulimit -H -n 4096; echo hard=$?; ulimit -n 2048; echo soft=$?; ulimit -n")
    status, out, err = sh(script, cfg={
        "capabilities": DEFAULT_CAPS, "rlimits": [configs.Rlimit("NOFILE", 1024, 1024)]})
    res = dict(w.split("=") for w in out.split() if "=" in w)
    assert res["mount"] != "0" and "permission denied" in err
    # EPERM (insmod exits with the errno), or ENOSYS on a kernel without modules
    assert res["insmod"] in ("1", "38"), err
    assert (res["hard"], res["soft"], out.split()[-1]) == ("1", "1", "1024"), err


def test_cannot_change_the_hosts_hostname(sh):
    host = os.uname().nodename
    status, out, err = sh("hostname lct-evil; hostname", cfg={"capabilities": None})
    assert (status, out.strip()) == (0, "lct-evil"), err
    status, out, err = sh("hostname lct-evil", cfg={"capabilities": DEFAULT_CAPS})
    assert status != 0 and "not permitted" in err
    assert os.uname().nodename == host


def test_cannot_see_or_kill_a_host_process(sh):
    host = subprocess.Popen(["sleep", "600"])
    try:
        status, out, err = sh(f"ls /proc | grep -c '^[0-9]'; kill -9 {host.pid}; echo kill=$?; "
                              f"test -e /proc/{host.pid}; echo seen=$?",
                              cfg={"capabilities": None})
        count, kill, seen = out.split()
        assert int(count) <= 3          # sh, ls, grep
        assert (kill, seen) == ("kill=1", "seen=1")
        assert host.poll() is None
    finally:
        host.kill()
        host.wait()


# -- CVE-2019-5736: the runtime's binary through /proc/self/exe -------------

def _python_hash():
    with open(os.path.realpath(sys.executable), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_exec_of_the_runtime_binary_is_refused(rootfs_copy, factory, make_config):
    """An image whose entrypoint is /proc/self/exe -- directly, through a
    symlink or as a #! interpreter -- would run the host's Python."""
    os.symlink("/proc/self/exe", os.path.join(rootfs_copy, "bin/evil"))
    with open(os.path.join(rootfs_copy, "bin/evil.sh"), "w") as f:
        f.write("#!/proc/self/exe\nprint('escaped')\n")
    os.chmod(os.path.join(rootfs_copy, "bin/evil.sh"), 0o755)
    # a host binary the embedding program happens to hold open (close-on-exec)
    host_binary = os.open(shutil.which("true"), os.O_RDONLY | os.O_CLOEXEC)
    before = _python_hash()
    try:
        for args in (["/proc/self/exe", "-c", "print(1)"], ["/bin/evil"], ["evil"],
                     ["/bin/evil.sh"], [f"/proc/self/fd/{host_binary}"]):
            c = factory.create(unique(), in_copy(make_config, rootfs_copy))
            try:
                with pytest.raises(SetupError) as e:
                    c.start(libcontainer.Process(args=args))
                assert "refusing to execute a file from outside the container" in str(e.value)
            finally:
                c.destroy()
    finally:
        os.close(host_binary)
    assert _python_hash() == before


SCAN = r"""
for d in /proc/[0-9]*; do
  p=${d#/proc/}
  echo "exe $p $(readlink $d/exe 2>/dev/null)"
  ( exec 4<>$d/exe ) 2>/dev/null && echo "WRITABLE $p"
  ( exec 4<$d/exe ) 2>/dev/null && echo "READABLE $p"
done
"""


def _check_scan(out, runtime_pids):
    exes = dict(line.split(" ", 2)[1:] for line in out.splitlines()
                if line.startswith("exe ") and len(line.split(" ", 2)) == 3)
    for pid in runtime_pids:
        assert pid in exes or f"exe {pid} " in out, out      # it was visible
        assert exes.get(pid, "").strip() == "", out           # but not its exe
        assert f"READABLE {pid}" not in out, out
    assert "WRITABLE" not in out, out
    python = os.path.realpath(sys.executable)
    assert python not in out


def test_held_init_exe_is_out_of_reach(factory, make_config):
    """A created (held) container's init is the runtime's Python until
    start: a process joined meanwhile cannot open its /proc/1/exe."""
    before = _python_hash()
    c = factory.create(unique(), make_config(capabilities=DEFAULT_CAPS))
    try:
        c.start(libcontainer.Process(args=["/bin/true"]), hold=True)
        status, out = capture(c, ["/bin/sh", "-c", SCAN])
        _check_scan(out, ["1"])
    finally:
        c.destroy()
    assert _python_hash() == before


class _PauseJoined:
    """In the child of a joined process: tell the init our pid on its stdin,
    wait until it has scanned /proc, then go on to exec."""

    def __init__(self, go_w, done_r):
        self.go_w, self.done_r = go_w, done_r

    @hookimpl
    def libcontainer_setup_privileges(self, container, process):
        if getattr(process, "lct_pause", False):
            os.write(self.go_w, f"{os.getpid()}\n".encode())
            select.select([self.done_r], [], [], 60)    # a safety net, not a timing


def test_joined_process_exe_is_out_of_reach(factory, make_config):
    """While a joined process is being set up it is the runtime's Python,
    inside the container's PID namespace: the container scans /proc/*/exe
    right then and reaches neither the interpreter nor any host binary."""
    before = _python_hash()
    go_r, go_w = os.pipe()
    done_r, done_w = os.pipe()
    factory.plugin_manager.register(_PauseJoined(go_w, done_r), "lct-pause")
    c = factory.create(unique(), make_config(capabilities=DEFAULT_CAPS))
    out_r, out_w = os.pipe()
    try:
        script = f"read pid; echo target $pid; {SCAN.strip()}; echo x >&3; exec sleep 1000"
        init = libcontainer.Process(args=["/bin/sh", "-c", script], stdin=go_r, stdout=out_w,
                                    stderr=out_w, extra_fds=[done_w])
        c.start(init)
        for fd in (go_r, out_w, done_w):
            os.close(fd)
        joined = libcontainer.Process(args=["/bin/true"])
        joined.lct_pause = True
        c.run(joined)
        assert joined.wait() == 0
        c.signal(9)
        init.wait()
        out = read_all(out_r)
    finally:
        c.destroy()
        for fd in (go_w, done_r, out_r):
            os.close(fd)
    target = re.search(r"^target (\d+)$", out, re.M).group(1)
    _check_scan(out, [target])
    assert _python_hash() == before


# -- CVE-2024-21626: leaked fds, a cwd outside the container ----------------

def test_only_stdio_and_extra_fds_are_open(running, tmp_path):
    script = "ls /proc/$$/fd; readlink /proc/$$/cwd; readlink /proc/$$/root"
    c = running(capabilities=DEFAULT_CAPS)
    status, out = capture(c, ["/bin/sh", "-c", script], cwd="/tmp")
    assert out.split() == ["0", "1", "2", "/tmp", "/"]
    with open(tmp_path / "extra", "w") as extra:
        status, out = capture(c, ["/bin/sh", "-c", script], extra_fds=[extra.fileno()])
    assert out.split() == ["0", "1", "2", "3", "/", "/"]


def test_init_has_only_stdio_open(sh):
    status, out, err = sh("ls /proc/$$/fd; readlink /proc/$$/cwd", cwd="/tmp")
    assert out.split() == ["0", "1", "2", "/tmp"], err


def test_cwd_through_a_leaked_fd_is_refused(sh, tmp_path):
    """cwd=/proc/self/fd/N would reach a host directory held open by the
    runtime (its state dir lock, a caller's fd): refused, or inside."""
    hostdir = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(SetupError, match="is outside the container"):
            sh("pwd", cwd=f"/proc/self/fd/{hostdir}")
        for n in range(3, 16):
            try:
                status, out, err = sh("pwd; ls ..", cwd=f"/proc/self/fd/{n}")
            except SetupError as e:
                assert str(e).startswith(f"cwd '/proc/self/fd/{n}': ")
                continue
            assert out.startswith("/"), out
    finally:
        os.close(hostdir)


# -- CVE-2021-30465: mount destinations through symlinks --------------------

def test_mount_destination_symlinks_stay_in_the_rootfs(rootfs_copy, factory, make_config,
                                                       tmp_path, no_mount_residue):
    victim = tmp_path / "victim"
    victim.mkdir()
    source = tmp_path / "source"
    source.mkdir()
    (source / "marker").write_text("in\n")
    os.symlink(str(victim), os.path.join(rootfs_copy, "abs"))
    os.symlink("../" * 20 + str(victim).lstrip("/"), os.path.join(rootfs_copy, "rel"))
    os.symlink("/", os.path.join(rootfs_copy, "toroot"))
    mounts = configs.default_mounts() + [
        configs.Mount("tmpfs", "/abs/m1", "tmpfs"),
        configs.Mount(str(source), "/rel/m2", "bind", ["bind", "ro"]),
        configs.Mount("tmpfs", "/toroot/m3", "tmpfs"),
    ]
    c = factory.create(unique(), in_copy(make_config, rootfs_copy, mounts=mounts))
    try:
        status, out = capture(c, ["/bin/sh", "-c", "cat /proc/self/mountinfo; "
                                                  "cat /rel/m2/marker"], join=False)
    finally:
        c.destroy()
    assert status == 0, out
    points = [line.split()[4] for line in out.splitlines() if len(line.split()) > 4]
    assert f"{victim}/m1" in points and f"{victim}/m2" in points and "/m3" in points
    assert "in" in out.split()
    assert os.listdir(victim) == []                 # nothing made on the host
    assert not os.path.exists("/m3")
    assert os.path.isdir(os.path.join(rootfs_copy, str(victim).lstrip("/"), "m1"))


# -- CVE-2019-19921: /proc over a symlink or a file -------------------------

@pytest.mark.parametrize("trap", ["symlink", "file"])
def test_proc_over_a_symlink_or_file_is_refused(rootfs_copy, factory, make_config, trap,
                                                no_mount_residue):
    proc = os.path.join(rootfs_copy, "proc")
    os.rmdir(proc)
    if trap == "symlink":
        os.symlink("/tmp", proc)
    else:
        open(proc, "w").close()
    c = factory.create(unique(), in_copy(make_config, rootfs_copy))
    try:
        with pytest.raises(SetupError, match="refusing to mount proc over a symlink"):
            c.start(libcontainer.Process(args=["/bin/true"]))
    finally:
        c.destroy()


# --------------------------------------------------------------------------
# the sample config, and disabling the plugins
# --------------------------------------------------------------------------

def test_sample_default_config_with_nsinit(tmp_path, rootfs):
    with open(os.path.join(REPO, "sample_configs", "default.json")) as f:
        config = json.load(f)
    with open(os.path.join(REPO, "sample_configs", "seccomp-default.json")) as f:
        assert config["seccomp"] == json.load(f)
    config["rootfs"] = rootfs
    config["cgroups"]["path"] = "/" + unique("default")
    path = tmp_path / "container.json"
    path.write_text(json.dumps(config))
    script = ("grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; "
              "wc -c < /proc/keys; unshare -n true || echo unshare-denied; "
              "mount -t tmpfs t /mnt || echo mount-denied")
    r = nsinit("exec", "--id", unique(), "--config", str(path), "sh", "-c", script,
               root=str(tmp_path / "state"))
    assert r.returncode == 0, r.stderr
    assert int(status_field(r.stdout, "CapEff"), 16) == mask(DEFAULT_CAPS)
    assert int(status_field(r.stdout, "CapBnd"), 16) == mask(DEFAULT_CAPS)
    assert status_field(r.stdout, "NoNewPrivs") == "1"
    assert status_field(r.stdout, "Seccomp") == "2"
    assert "unshare-denied" in r.stdout and "mount-denied" in r.stdout
    assert os.listdir(tmp_path / "state") == []


def test_confinement_plugins_can_be_disabled(state_root, make_config, tmp_path):
    """Disabled, they are not loaded; a config using their fields is refused
    (it would run unconfined: issue 15 item 11), one not using them runs."""
    factory = libcontainer.new(state_root, disabled=["capabilities", "no_new_privs",
                                                     "seccomp", "masked_paths"])
    for field, value in (("capabilities", ["CHOWN"]), ("no_new_privileges", True),
                         ("seccomp", MKDIR_DENIED), ("mask_paths", ["/proc/keys"])):
        with pytest.raises(ConfigError, match=f"^{field}: is set but the .* plugin"):
            factory.create(unique(), make_config(**{"capabilities": None, field: value}))
    c = factory.create(unique(), make_config(capabilities=None))
    try:
        status, out = capture(c, ["/bin/sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' "
                                  "/proc/self/status"], join=False)
    finally:
        c.destroy()
    assert status_field(out, "NoNewPrivs") == "0" and status_field(out, "Seccomp") == "0"

"""AppArmor profiles and SELinux labels (plugins/lsm.py).

This host has neither LSM: here the refusals, the mount label being
ignored, and the SELinux plumbing against a temporary tree (SELinux cannot
be enabled on these machines). AppArmor confinement itself runs in the
cgv2-vm --systemd guest (the ``in_vm`` tests; tests/test_systemd_vm.py
boots it).
"""
import os
import subprocess
import types

import pytest
from conftest import capture, unique
from test_pyrunc import Runtime

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, SetupError
from libcontainer.plugins import lsm

IN_VM = os.environ.get("CGV2_VM") == "1" and lsm.apparmor_enabled()
in_vm = pytest.mark.skipif(not IN_VM, reason="needs AppArmor: runs in the cgv2-vm --systemd "
                           "guest (tests/test_systemd_vm.py boots it)")


# -- host: what happens without the LSMs ----------------------------------------------

@pytest.mark.skipif(lsm.apparmor_enabled(), reason="AppArmor is enabled on this host")
def test_apparmor_profile_refused_without_apparmor(factory, make_config):
    # runc fails too: its write of "exec PROFILE" to attr/exec gets EINVAL
    with pytest.raises(ConfigError) as e:
        factory.create(unique(), make_config(apparmor_profile="docker-default"))
    assert str(e.value) == ("apparmor_profile: 'docker-default' cannot be applied: AppArmor "
                            "is not enabled on this host")


@pytest.mark.skipif(lsm.selinux_enabled(), reason="SELinux is enabled on this host")
def test_process_label_refused_without_selinux(factory, make_config):
    with pytest.raises(ConfigError, match="^process_label: .* SELinux is not enabled"):
        factory.create(unique(), make_config(process_label="system_u:system_r:container_t:s0"))


@pytest.mark.skipif(lsm.selinux_enabled(), reason="SELinux is enabled on this host")
def test_mount_label_ignored_without_selinux(factory, make_config):
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    config = make_config(mount_label=label, mounts=[
        configs.Mount("proc", "/proc", "proc"),
        configs.Mount("tmpfs", "/tmp", "tmpfs", data="size=1m"),
        # a /dev of its own: device nodes made in the shared rootfs's /dev
        # would be read forever by tests that copy it (shutil.copytree)
        configs.Mount("tmpfs", "/dev", "tmpfs"),
        configs.Mount("mqueue", "/dev/mqueue", "mqueue")])
    container = factory.create(unique(), config)
    try:
        status, out = capture(container, ["cat", "/proc/self/mounts"], join=False)
    finally:
        container.destroy()
    assert status == 0 and " /tmp tmpfs " in out and "context=" not in out


# -- host: the plumbing, against a temporary tree -----------------------------------------

@pytest.fixture
def fake_lsm(tmp_path, monkeypatch):
    """SELinux "enabled" (selinuxfs with enforce), AppArmor enabled with
    one loaded profile, and the thread's attr files: all plain files."""
    sysfs, proc = tmp_path / "sys", tmp_path / "proc"
    (sysfs / "fs" / "selinux").mkdir(parents=True)
    (sysfs / "fs" / "selinux" / "enforce").write_text("1")
    (sysfs / "module" / "apparmor" / "parameters").mkdir(parents=True)
    (sysfs / "module" / "apparmor" / "parameters" / "enabled").write_text("Y\n")
    (sysfs / "kernel" / "security" / "apparmor").mkdir(parents=True)
    (sysfs / "kernel" / "security" / "apparmor" / "profiles").write_text(
        "lct-web (enforce)\n/usr/bin/man (complain)\n")
    attr = proc / "thread-self" / "attr"
    (attr / "apparmor").mkdir(parents=True)
    for f in ("exec", "apparmor/exec"):
        (attr / f).write_text("")
    monkeypatch.setattr(lsm, "SYS", str(sysfs))
    monkeypatch.setattr(lsm, "PROC", str(proc))
    monkeypatch.setattr(lsm, "SELINUXFS", str(sysfs / "fs" / "selinux"))
    return attr


def _container(config):
    return types.SimpleNamespace(config=config)


def test_labels_are_written_where_the_kernel_reads_them(fake_lsm, make_config):
    config = make_config(process_label="system_u:system_r:container_t:s0:c1,c2",
                         apparmor_profile="lct-web")
    lsm.libcontainer_validate_config(config)
    process = libcontainer.Process(args=["true"])
    lsm.libcontainer_setup_privileges(_container(config), process)
    assert (fake_lsm / "apparmor" / "exec").read_text() == "exec lct-web"
    assert (fake_lsm / "exec").read_text() == "system_u:system_r:container_t:s0:c1,c2"
    # a process's own label and profile win (pyrunc exec --process-label, --apparmor)
    for f in ("exec", "apparmor/exec"):
        (fake_lsm / f).write_text("")     # a plain file keeps a longer old value's tail
    process = libcontainer.Process(args=["true"], process_label="user_u:user_r:user_t:s0",
                                   apparmor_profile="/usr/bin/man")
    lsm.libcontainer_setup_privileges(_container(config), process)
    assert (fake_lsm / "apparmor" / "exec").read_text() == "exec /usr/bin/man"
    assert (fake_lsm / "exec").read_text() == "user_u:user_r:user_t:s0"


def test_apparmor_falls_back_to_attr_exec_before_linux_5_1(fake_lsm, make_config):
    os.unlink(fake_lsm / "apparmor" / "exec")
    os.rmdir(fake_lsm / "apparmor")
    lsm.libcontainer_setup_privileges(_container(make_config(apparmor_profile="lct-web")),
                                      libcontainer.Process(args=["true"]))
    assert (fake_lsm / "exec").read_text() == "exec lct-web"


def test_a_fifo_in_place_of_the_attribute_cannot_hang_the_setup(fake_lsm, make_config):
    """An image's FIFO where the attribute file should be: opened without
    blocking (no reader: ENXIO), one line, no hang. (On the real /proc the
    file is reached through the child's pinned /proc/PID, never the image's.)"""
    os.unlink(fake_lsm / "apparmor" / "exec")
    os.mkfifo(fake_lsm / "apparmor" / "exec")
    with pytest.raises(SetupError) as e:
        lsm.libcontainer_setup_privileges(_container(make_config(apparmor_profile="lct-web")),
                                          libcontainer.Process(args=["true"]))
    assert "apparmor_profile: cannot apply 'lct-web'" in str(e.value)


def test_unloaded_profile_is_one_line(fake_lsm, make_config):
    with pytest.raises(ConfigError) as e:
        lsm.libcontainer_validate_config(make_config(apparmor_profile="lct-nosuch"))
    assert str(e.value).startswith("apparmor_profile: profile 'lct-nosuch' is not loaded")
    lsm.libcontainer_validate_config(make_config(apparmor_profile="unconfined"))


def test_attr_write_error_is_one_line(fake_lsm, make_config):
    os.unlink(fake_lsm / "exec")
    with pytest.raises(SetupError, match="^process_label: cannot apply 'x_u:x_r:x_t:s0': "):
        lsm.libcontainer_setup_privileges(_container(make_config(process_label="x_u:x_r:x_t:s0")),
                                          libcontainer.Process(args=["true"]))


def test_mount_label_goes_to_tmpfs_mqueue_devpts(fake_lsm, make_config):
    label = "system_u:object_r:container_file_t:s0:c1,c2"
    config = make_config(mount_label=label, mounts=[
        configs.Mount("proc", "/proc", "proc"),
        configs.Mount("tmpfs", "/dev", "tmpfs", data="mode=755,size=65536k"),
        configs.Mount("devpts", "/dev/pts", "devpts", data="newinstance,ptmxmode=0666"),
        configs.Mount("mqueue", "/dev/mqueue", "mqueue"),
        configs.Mount("/srv", "/srv", "bind", flags=["rbind"])])
    init = libcontainer.Process(args=["true"])
    init.init = True
    lsm.libcontainer_finish_namespaces(_container(config), init)
    assert [m.data for m in config.mounts] == [
        "", f'mode=755,size=65536k,context="{label}"',
        f'newinstance,ptmxmode=0666,context="{label}"', f'context="{label}"', ""]


# -- in the cgv2-vm --systemd guest: real AppArmor ------------------------------------

@pytest.fixture
def profile(tmp_path):
    """A loaded profile allowing everything but writes under /mnt."""
    name = unique("aa")
    path = tmp_path / name
    path.write_text(f"profile {name} flags=(attach_disconnected,mediate_deleted) {{\n"
                    "  file, capability, network, unix, signal, ptrace, mount, umount,\n"
                    "  pivot_root,\n  deny /mnt/** w,\n}\n")
    subprocess.run(["apparmor_parser", "-r", str(path)], check=True, capture_output=True)
    yield name
    subprocess.run(["apparmor_parser", "-R", str(path)], capture_output=True)


@pytest.fixture
def rt(tmp_path, rootfs):
    runtime = Runtime(tmp_path, rootfs)
    yield runtime
    assert not runtime.cleanup(), "containers left behind"


def _tmpfs_mounts(spec, profile=None):
    spec["mounts"] += [{"destination": d, "type": "tmpfs", "source": "tmpfs"}
                       for d in ("/tmp", "/mnt")]
    if profile:
        spec["process"]["apparmorProfile"] = profile


SCRIPT = ("cat /proc/self/attr/current; echo a > /tmp/a && echo wrote-tmp; "
          "echo b > /mnt/b || echo refused-mnt")


@in_vm
def test_apparmor_profile_confines_the_init_in_vm(rt, profile):
    cid, bundle = rt.bundle(("sh", "-c", SCRIPT), edit=lambda s: _tmpfs_mounts(s, profile))
    r = rt.ok("run", "--bundle", bundle, cid)
    assert r.stdout.split() == [profile, "(enforce)", "wrote-tmp", "refused-mnt"]
    assert "Permission denied" in r.stderr


@in_vm
def test_apparmor_profile_of_an_exec_process_in_vm(rt, profile, tmp_path):
    cid, bundle = rt.bundle(("sleep", "100"), edit=_tmpfs_mounts)
    pid_file = os.path.join(bundle, "pid")
    rt.ok("run", "--detach", "--pid-file", pid_file, "--bundle", bundle, cid)
    proc = tmp_path / "process.json"
    proc.write_text('{"args": ["sh", "-c", "%s"], "cwd": "/", "apparmorProfile": "%s"}'
                    % (SCRIPT, profile))
    r = rt.ok("exec", "--process", str(proc), cid)
    assert r.stdout.split() == [profile, "(enforce)", "wrote-tmp", "refused-mnt"]
    # the init stays unconfined
    with open(f"/proc/{open(pid_file).read().strip()}/attr/current") as f:
        assert f.read().strip() == "unconfined"
    rt.ok("delete", "--force", cid)


@in_vm
def test_unknown_profile_is_a_clear_error_in_vm(rt):
    cid, bundle = rt.bundle(("true",), edit=lambda s: _tmpfs_mounts(s, "lct-nosuch"))
    r = rt("run", "--bundle", bundle, cid)
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0
    assert "profile 'lct-nosuch' is not loaded" in r.stderr
    assert not os.path.exists(os.path.join(rt.root, cid))

"""The foundation: a real isolated container through the API and nsinit."""
import json
import os
import signal
import subprocess
import sys

import pytest

import libcontainer
from libcontainer import configs
from libcontainer.errors import ConfigError, ContainerExists, ContainerNotExists, PluginError

from conftest import BIN, REPO, nsinit, unique


# -- isolation ----------------------------------------------------------------

def test_isolated_view(run):
    status, out, err = run(["/bin/sh", "-c",
                            "hostname; echo pid=$$; ps -o pid | wc -l; ip -o link | wc -l; "
                            "ip -o link; cat /proc/self/mountinfo | wc -l; ls /proc | grep -c '^[0-9]'"])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0] == "testing"
    assert lines[1] == "pid=1"
    # header + sh + ps (+ wc): nothing from the host
    assert int(lines[2]) <= 4
    assert lines[3] == "1" and ": lo:" in lines[4]
    # the container's own mount table: rootfs + default mounts only
    assert int(lines[5]) <= 10
    assert int(lines[6]) <= 4


def test_host_processes_invisible(run):
    status, out, _ = run(["/bin/sh", "-c", f"kill -0 {os.getpid()} && echo visible || echo hidden"])
    assert out.strip() == "hidden"


def test_mounts_do_not_reach_host(run, no_mount_residue):
    status, _, err = run(["/bin/sh", "-c", "mount -t tmpfs none /tmp && touch /tmp/x"])
    assert status == 0, err


def test_readonly_sys(run):
    status, out, _ = run(["/bin/sh", "-c", "touch /sys/x 2>&1; grep ' /sys ' /proc/mounts"])
    assert "Read-only file system" in out
    assert " ro," in out


def test_readonly_rootfs(run, make_config):
    status, out, _ = run(["/bin/sh", "-c", "touch /x 2>&1; touch /dev/shm/ok && echo shm-ok"],
                         config=make_config(readonlyfs=True))
    assert "Read-only file system" in out
    assert "shm-ok" in out


def test_devices(run):
    status, out, err = run(["/bin/sh", "-c",
                            "head -c 5 /dev/zero | wc -c; echo x > /dev/null && echo null-ok; "
                            "head -c 8 /dev/urandom | wc -c; ls -l /dev/full /dev/tty"])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].strip() == "5" and lines[1] == "null-ok" and lines[2].strip() == "8"
    assert lines[3].startswith("crw-rw-rw-") and "1,   7" in lines[3]


def test_extra_device_node(run, make_config):
    dev = configs.Device(type="c", path="/dev/mynull", major=1, minor=3, file_mode=0o600,
                         uid=1000, gid=1000)
    config = make_config(devices=[*configs.DEFAULT_AUTO_CREATED_DEVICES, dev])
    status, out, err = run(["/bin/sh", "-c", "ls -ln /dev/mynull; echo hi > /dev/mynull"],
                           config=config)
    assert status == 0, err
    assert out.startswith("crw-------") and " 1000 " in out


def test_rlimits(run, make_config):
    config = make_config(rlimits=[configs.Rlimit("RLIMIT_NOFILE", hard=200, soft=100),
                                  configs.Rlimit("NPROC", hard=500, soft=500)])
    status, out, _ = run(["/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u"], config=config)
    assert out.split() == ["100", "200", "500"]


def test_bind_mount(run, make_config, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("from host\n")
    mounts = configs.default_mounts() + [
        configs.Mount(str(tmp_path / "data"), "/mnt/data", "bind", ["rbind", "ro"])]
    status, out, _ = run(["/bin/sh", "-c", "cat /mnt/data/f; touch /mnt/data/g 2>&1"],
                         config=make_config(mounts=mounts))
    assert "from host" in out and "Read-only file system" in out
    assert not (tmp_path / "data" / "g").exists()


# -- processes ----------------------------------------------------------------

def test_exit_status(run):
    assert run(["/bin/sh", "-c", "exit 3"])[0] == 3


def test_signalled_status(factory, make_config):
    container = factory.create(unique(), make_config())
    try:
        p = libcontainer.Process(args=["/bin/sleep", "30"])
        container.start(p)
        container.signal(signal.SIGKILL)
        assert p.wait() == 128 + 9
    finally:
        container.destroy()


def test_stdio_plumbing(run, tmp_path):
    src = tmp_path / "in"
    src.write_text("hello stdin\n")
    with open(src) as stdin:
        status, out, err = run(["/bin/sh", "-c", "cat; echo to-err >&2"], stdin=stdin)
    assert out == "hello stdin\n" and err == "to-err\n"


def test_stdio_fds(factory, make_config):
    r, w = os.pipe()
    container = factory.create(unique(), make_config())
    try:
        p = libcontainer.Process(args=["/bin/echo", "via fd"], stdout=w)
        container.start(p)
        os.close(w)
        assert p.wait() == 0
        assert os.read(r, 100) == b"via fd\n"
    finally:
        os.close(r)
        container.destroy()


def test_cwd_and_env(run):
    status, out, _ = run(["/bin/sh", "-c", "pwd; echo $FOO"], cwd="/etc", env=["FOO=bar"])
    assert out.split() == ["/etc", "bar"]


def test_missing_binary(factory, make_config, state_root):
    container = factory.create(unique(), make_config())
    with pytest.raises(libcontainer.SetupError, match="exec '/nope': No such file"):
        container.start(libcontainer.Process(args=["/nope"]))
    assert container.status() == "stopped"
    container.destroy()


def test_init_exit_kills_the_rest(factory, make_config):
    container = factory.create(unique(), make_config())
    try:
        p = libcontainer.Process(args=["/bin/sh", "-c", "sleep 100 & echo $!"],
                                 stdout=subprocess.PIPE if False else None)
        r, w = os.pipe()
        p.stdout = w
        container.start(p)
        os.close(w)
        assert p.wait() == 0
        os.close(r)
        assert container.processes() == []
        assert container.status() == "stopped"
    finally:
        container.destroy()


# -- state --------------------------------------------------------------------

def test_state_json_lifecycle(factory, make_config, state_root):
    cid = unique()
    container = factory.create(cid, make_config())
    state_file = os.path.join(state_root, cid, "state.json")
    assert os.path.exists(state_file)
    assert container.status() == "stopped"
    p = libcontainer.Process(args=["/bin/sleep", "30"])
    container.start(p)
    data = json.load(open(state_file))
    assert data["init_pid"] == p.pid and data["init_start_time"] > 0
    assert data["config"]["hostname"] == "testing"
    assert data["namespaces"]["NEWPID"] == f"/proc/{p.pid}/ns/pid"
    assert container.status() == "running"
    # another process sees the same container, status derived from the system
    code = ("import libcontainer,sys; c=libcontainer.new(sys.argv[1]).load(sys.argv[2]); "
            "print(c.status(), c.init_pid)")
    out = subprocess.run([sys.executable, "-c", code, state_root, cid],
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["running", str(p.pid)]
    container.destroy()
    assert not os.path.exists(os.path.join(state_root, cid))
    assert p.wait() == 137
    container.destroy()      # idempotent


def test_status_stopped_when_pid_reused(factory, make_config):
    container = factory.create(unique(), make_config())
    container.start(libcontainer.Process(args=["/bin/true"]))
    container.init_process.wait()
    container.state["init_pid"] = os.getpid()     # a live pid with another start time
    assert container.status() == "stopped"
    container.state["init_pid"] = 0
    container.destroy()


def test_id_validation_and_clash(factory, make_config):
    for bad in ["", "a/b", "..", "../x", "x" * 200, ".hidden"]:
        with pytest.raises(libcontainer.LibcontainerError, match="invalid container id"):
            factory.create(bad, make_config())
    cid = unique()
    c = factory.create(cid, make_config())
    with pytest.raises(ContainerExists, match=f"container {cid} already exists"):
        factory.create(cid, make_config())
    c.destroy()
    with pytest.raises(ContainerNotExists):
        factory.load(cid)


def test_config_roundtrip(tmp_path, rootfs):
    from libcontainer import sample
    config = sample.config(rootfs)
    config.save(tmp_path / "c.json")
    assert configs.Config.load(tmp_path / "c.json") == config


@pytest.mark.parametrize("patch, message", [
    ({"rootfs": "/nonexistent-lct"}, "rootfs: /nonexistent-lct does not exist"),
    ({"namespaces": [{"type": "NEWNS"}, {"type": "NEWNET"}, {"type": "NEWUTS"}, {"type": "NEWFOO"}]},
     "namespaces[3].type: unknown namespace 'NEWFOO'"),
    ({"rlimits": [{"type": "RLIMIT_BOGUS", "hard": 1, "soft": 1}]}, "rlimits[0].type: unknown rlimit"),
    ({"rlimits": [{"type": "NOFILE", "hard": 1, "soft": 5}]}, "rlimits[0]: soft limit 5 exceeds"),
    ({"rlimits": [{"type": "NOFILE", "hard": "x", "soft": 5}]}, "rlimits[0].hard: expected an integer"),
    ({"hostname": 5}, "hostname: expected a string"),
    ({"mounts": [{"source": "x", "destination": "rel", "device": "tmpfs"}]}, "is not absolute"),
    ({"mounts": [{"source": "t", "destination": "/t", "device": "tmpfs", "flags": ["bogus"]}]},
     "unknown mount flag 'bogus'"),
])
def test_bad_config_one_line_error(tmp_path, rootfs, patch, message, no_mount_residue):
    from libcontainer import sample
    data = sample.config_dict(rootfs)
    data.update(patch)
    (tmp_path / "container.json").write_text(json.dumps(data))
    root = str(tmp_path / "state")
    r = nsinit("exec", "--id", unique(), "/bin/true", root=root, cwd=tmp_path)
    assert r.returncode == 1
    assert message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not os.path.exists(root) or os.listdir(root) == []


def test_invalid_json(tmp_path):
    (tmp_path / "container.json").write_text("{not json")
    r = nsinit("exec", "/bin/true", root=str(tmp_path / "s"), cwd=tmp_path)
    assert r.returncode == 1 and "is not valid JSON" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


# -- nsinit ---------------------------------------------------------------------

@pytest.fixture
def bundle(tmp_path, rootfs):
    from libcontainer import sample
    config = sample.config_dict(rootfs)
    config["cgroups"] = None
    config["hostname"] = "nsinit-test"
    (tmp_path / "container.json").write_text(json.dumps(config))
    return tmp_path


def test_nsinit_exec(bundle):
    root = str(bundle / "state")
    r = nsinit("exec", "--id", unique(), "/bin/sh", "-c", "hostname; exit 5", root=root, cwd=bundle)
    assert r.returncode == 5 and r.stdout == "nsinit-test\n"
    assert os.listdir(root) == []


def test_nsinit_stdin(bundle):
    r = nsinit("exec", "--id", unique(), "/bin/cat", root=str(bundle / "s"), cwd=bundle,
               input="piped\n")
    assert r.stdout == "piped\n"


def test_nsinit_forwards_sigterm(bundle):
    root = str(bundle / "state")
    proc = subprocess.Popen([os.path.join(BIN, "nsinit"), "--root", root, "exec", "--id", unique(),
                             "/bin/sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"],
                            cwd=bundle, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 42
    assert os.listdir(root) == []


def test_nsinit_config_is_complete(tmp_path):
    r = nsinit("config")
    data = json.loads(r.stdout)
    for key in ("rootfs", "namespaces", "capabilities", "cgroups", "mounts", "devices",
                "rlimits", "hostname", "networks", "mask_paths"):
        assert key in data
    configs.Config.from_dict(data)


def test_sample_configs_load(rootfs):
    folder = os.path.join(REPO, "sample_configs")
    names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith("seccomp")]
    assert names
    for name in names:
        configs.Config.from_dict(json.load(open(os.path.join(folder, name))), where=name)


def test_nsinit_state_and_list(bundle):
    root = str(bundle / "state")
    cid = unique()
    proc = subprocess.Popen([os.path.join(BIN, "nsinit"), "--root", root, "exec", "--id", cid,
                             "/bin/sh", "-c", "echo up; sleep 60"], cwd=bundle,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "up\n"
        state = json.loads(nsinit("state", cid, root=root).stdout)
        assert state["status"] == "running" and state["pid"] > 0
        listing = nsinit("list", root=root).stdout
        assert cid in listing and "running" in listing
        assert nsinit("list", "-q", root=root).stdout.split() == [cid]
        r = nsinit("state", "nope", root=root)
        assert r.returncode == 1 and r.stderr == "nsinit: container nope does not exist\n"
        r = nsinit("kill", cid, "KILL", root=root)
        assert r.returncode == 0
        assert proc.wait(timeout=20) == 137
    finally:
        proc.kill()
        proc.wait()
    assert os.listdir(root) == []


# -- plugins --------------------------------------------------------------------

def test_disable_plugin(factory, make_config, state_root):
    f = libcontainer.new(state_root, disabled=["hostname"])
    container = f.create(unique(), make_config(hostname="changed"))
    r, w = os.pipe()
    try:
        p = libcontainer.Process(args=["/bin/hostname"], stdout=w)
        container.start(p)
        os.close(w)
        p.wait()
        # the hostname plugin did not run: the new UTS namespace keeps the host's name
        assert os.read(r, 100).decode().strip() == os.uname().nodename
    finally:
        os.close(r)
        container.destroy()


def test_disable_plugin_env_and_cli(bundle):
    env = dict(os.environ, LIBCONTAINER_DISABLE_PLUGINS="hostname")
    r = nsinit("exec", "--id", unique(), "/bin/hostname", root=str(bundle / "s"), cwd=bundle, env=env)
    assert r.stdout.strip() == os.uname().nodename
    r = nsinit("--disable-plugin", "hostname", "plugins")
    assert any(line.split()[0] == "hostname" and "disabled" in line for line in r.stdout.splitlines())


def test_essential_plugin_refused(state_root):
    with pytest.raises(PluginError, match="'rootfs' is essential"):
        libcontainer.new(state_root, disabled=["rootfs"]).plugin_manager
    r = nsinit("--disable-plugin", "namespaces", "plugins")
    assert r.returncode == 1 and "essential" in r.stderr and "Traceback" not in r.stderr


def test_plugins_listing():
    r = nsinit("plugins")
    assert r.returncode == 0
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    for name in ("namespaces", "rootfs", "devices", "hostname", "rlimits", "user"):
        assert name in rows and "libcontainer" in rows[name] and "enabled" in rows[name]
    assert "setup_mounts" in rows["rootfs"]


def test_third_party_plugin(tmp_path, bundle):
    """A separately packaged plugin, installed, runs in the pipeline; disabling it works."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(target), os.path.join(REPO, "tests", "thirdparty",
                                                          "libcontainer-marker")],
                   check=True, capture_output=True)
    env = dict(os.environ, PYTHONPATH=str(target), XDG_CACHE_HOME=str(tmp_path / "cache"))
    cid = unique()
    r = nsinit("exec", "--id", cid, "/bin/cat", "/dev/shm/marker", root=str(bundle / "s"),
               cwd=bundle, env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"marked {cid}\n"
    listing = nsinit("plugins", env=env).stdout
    assert any(line.startswith("marker ") and "libcontainer-marker" in line
               for line in listing.splitlines())
    env["LIBCONTAINER_DISABLE_PLUGINS"] = "marker"
    r = nsinit("exec", "--id", unique(), "/bin/cat", "/dev/shm/marker", root=str(bundle / "s"),
               cwd=bundle, env=env)
    assert r.returncode == 1 and "No such file" in r.stdout + r.stderr


def test_plugin_index_cache_follows_installs(tmp_path):
    """The cached entry-point index is rebuilt when sys.path changes."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    code = ("from libcontainer.plugin_manager import discover; "
            "print(sorted(e['name'] for e in discover()))")
    first = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "rootfs" in first.stdout
    assert os.listdir(tmp_path / "cache" / "libcontainer")
    again = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert again.stdout == first.stdout


def test_logging(bundle, tmp_path):
    log_file = tmp_path / "log.json"
    r = nsinit("--log-format", "json", "--log", str(log_file), "--log-level", "info",
               "exec", "--id", unique(), "/nonexistent", root=str(bundle / "s"), cwd=bundle)
    assert r.returncode != 0
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert records[-1]["level"] == "error"
    assert "/nonexistent" in records[-1]["msg"] and "time" in records[-1]
    # human-readable on stderr at the chosen level
    r = nsinit("--log-level", "info", "exec", "--id", unique(), "/bin/true",
               root=str(bundle / "s"), cwd=bundle)
    assert r.returncode == 0 and "container started" in r.stderr


def test_partial_plugin_manager_imports_only_what_it_needs(tmp_path):
    """A manager built for a few hooks (pyrunc start, delete) imports only
    the plugins that implement them, once the index knows who does what."""
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    code = ("import sys; from libcontainer.plugin_manager import PluginManager; "
            "pm = PluginManager(hooks=sys.argv[1:] or None); "
            "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules "
            "if m.startswith('libcontainer.plugins.') and m.count('.') == 2))")
    full = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert "seccomp" in full.stdout and "rootfs" in full.stdout
    part = subprocess.run([sys.executable, "-c", code, "libcontainer_post_start"], env=env,
                          capture_output=True, text=True)
    loaded = eval(part.stdout)
    assert "oci_hooks" in loaded
    assert "seccomp" not in loaded and "capabilities" not in loaded and "rootfs" not in loaded


def test_oom_score_adj(run, make_config):
    status, out, _ = run(["/bin/cat", "/proc/self/oom_score_adj"],
                         config=make_config(oom_score_adj=500))
    assert out.strip() == "500"


def test_every_package_is_installed():
    """A regular (non-editable) install gets every package of the tree: a
    package missing from setup.cfg works in the editable install only."""
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(REPO, "setup.cfg"))
    dirs = {name: path for name, path in
            (line.split(" = ") for line in cfg["options"]["package_dir"].split("\n") if line)}
    listed = set(cfg["options"]["packages"].split())
    found = set()
    for name, top in dirs.items():
        for d, _, files in os.walk(os.path.join(REPO, top)):
            if "__init__.py" in files:
                rel = os.path.relpath(d, os.path.join(REPO, top))
                found.add(name if rel == "." else name + "." + rel.replace("/", "."))
    assert found - listed == set(), "missing from setup.cfg [options] packages"

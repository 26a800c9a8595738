"""runtime-spec fields beyond the basics, each seen taking effect in a real
container (scheduler, I/O priority, CPU affinity, personality, memory
policy, time namespace offsets, session keyring, /dev/console, pidfd
socket), each refusal as its one-line error, the field table against the
docs, and ``pyrunc features`` against what the code accepts."""
import json
import os
import re
import socket
import subprocess
import tempfile

import pytest

import libcontainer
from libcontainer import configs, specconv
from libcontainer.errors import ConfigError

from conftest import BIN, REPO, capture, unique

PYRUNC = os.path.join(BIN, "pyrunc")


def stat_fields(text):
    """/proc/PID/stat -> {nice, rt_priority, policy} (fields 19, 40, 41)."""
    fields = text.rsplit(")", 1)[1].split()
    return {"nice": int(fields[16]), "rt_priority": int(fields[37]),
            "policy": int(fields[38])}


@pytest.fixture
def container(factory, make_config):
    """container(**config) -> a created container whose init sleeps; destroyed
    afterwards."""
    made = []

    def make(**kw):
        c = factory.create(unique(), make_config(**kw))
        made.append(c)
        c.start(libcontainer.Process(args=["sleep", "100"]))
        return c
    yield make
    for c in made:
        c.destroy()


# -- scheduler, I/O priority, affinity, personality, memory policy ---------------

def test_scheduler_and_io_priority_of_init_and_joined_processes(container):
    c = container(scheduler=configs.Scheduler("SCHED_BATCH", nice=7),
                  io_priority=configs.IOPriority("IOPRIO_CLASS_BE", 5))
    with open(f"/proc/{c.init_pid}/stat") as f:
        assert stat_fields(f.read()) == {"nice": 7, "rt_priority": 0, "policy": 3}
    out = subprocess.run(["ionice", "-p", str(c.init_pid)], capture_output=True, text=True)
    assert out.stdout.strip() == "best-effort: prio 5"
    out = subprocess.run(["chrt", "-p", str(c.init_pid)], capture_output=True, text=True)
    assert "SCHED_BATCH" in out.stdout
    # a joined process takes the config's, or its own
    status, out = capture(c, ["sh", "-c", "cat /proc/self/stat; ionice -p $$"])
    assert status == 0
    assert stat_fields(out.splitlines()[0])["policy"] == 3
    assert "best-effort: prio 5" in out
    status, out = capture(c, ["sh", "-c", "cat /proc/self/stat; ionice -p $$"],
                          scheduler=configs.Scheduler("SCHED_RR", priority=3),
                          io_priority=configs.IOPriority("IOPRIO_CLASS_IDLE"))
    assert status == 0, out
    assert stat_fields(out.splitlines()[0]) == {"nice": 0, "rt_priority": 3, "policy": 2}
    assert "idle" in out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_exec_cpu_affinity(container):
    cpu = max(os.sched_getaffinity(0))
    c = container(exec_cpu_affinity=configs.CPUAffinity(final=str(cpu)))
    status, out = capture(c, ["grep", "Cpus_allowed_list", "/proc/self/status"])
    assert out.split()[-1] == str(cpu)
    # not the init's (runtime-spec: "not applicable to the container's init")
    with open(f"/proc/{c.init_pid}/status") as f:
        assert f"Cpus_allowed_list:\t{cpu}\n" not in f.read()
    # without a cpuset cgroup to reset it, "initial" lasts until exec
    status, out = capture(c, ["grep", "Cpus_allowed_list", "/proc/self/status"],
                          cpu_affinity=configs.CPUAffinity(initial="0"))
    assert out.split()[-1] == "0"


NUMA = os.path.exists("/proc/self/numa_maps")
TIMENS = os.path.exists("/proc/self/ns/time")
KEYS = os.path.exists("/proc/keys")


@pytest.mark.skipif(not NUMA, reason="the kernel has no NUMA support")
def test_personality_linux32_and_memory_policy(container):
    c = container(personality=configs.Personality("LINUX32"),
                  memory_policy=configs.MemoryPolicy("MPOL_BIND", nodes="0"))
    with open(f"/proc/{c.init_pid}/personality") as f:
        assert int(f.read(), 16) == 0x0008
    with open(f"/proc/{c.init_pid}/numa_maps") as f:
        assert " bind:0 " in f.read()
    status, out = capture(c, ["sh", "-c", "uname -m; grep -c ' bind:0 ' /proc/self/numa_maps"])
    assert status == 0
    machine, binds = out.split()
    assert machine in ("i686", "armv8l") and int(binds) > 0


# -- time namespace, keyring -------------------------------------------------------

@pytest.mark.skipif(not TIMENS, reason="the kernel has no time namespaces")
def test_time_namespace_offsets(container, make_config):
    day = 86400
    c = container(namespaces=[configs.Namespace(t) for t in
                              ("NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWTIME")],
                  time_offsets={"boottime": configs.TimeOffset(secs=10 * day),
                                "monotonic": configs.TimeOffset(secs=day, nanosecs=5)})
    with open(f"/proc/{c.init_pid}/timens_offsets") as f:
        offsets = {line.split()[0]: line.split()[1:] for line in f}
    assert offsets == {"monotonic": [str(day), "5"], "boottime": [str(10 * day), "0"]}
    assert os.readlink(f"/proc/{c.init_pid}/ns/time") != os.readlink("/proc/self/ns/time")
    # a joined process shares the init's clocks
    with open("/proc/uptime") as f:
        host_uptime = float(f.read().split()[0])
    status, out = capture(c, ["cat", "/proc/uptime"])
    assert float(out.split()[0]) >= host_uptime + 10 * day


def test_time_offsets_need_a_new_time_namespace(factory, make_config):
    with pytest.raises(ConfigError, match="^time_offsets: need a new time namespace"):
        factory.create(unique(), make_config(time_offsets={"boottime": configs.TimeOffset(1)}))


def _session_keyrings():
    with open("/proc/keys") as f:
        return [line.split()[-2].rstrip(":") for line in f if " keyring " in line]


@pytest.mark.skipif(not KEYS, reason="the kernel has no keyrings")
def test_session_keyring_per_container(container):
    c = container()
    name = f"_ses.{c.id}"
    status, out = capture(c, ["cat", "/proc/keys"])
    assert status == 0
    assert f"keyring   {name}:" in out         # the exec'd process joined it too
    # the host's root sees it (uid search permission added, as runc)
    assert name in _session_keyrings()
    c2 = container(no_new_keyring=True)
    status, out = capture(c2, ["cat", "/proc/keys"])
    assert f"_ses.{c2.id}" not in out


# -- through pyrunc -------------------------------------------------------------------

class Pyrunc:
    """pyrunc with its own --root; bundles from `pyrunc spec`, edited."""

    def __init__(self, tmp_path, rootfs):
        self.tmp, self.rootfs = tmp_path, rootfs
        self.root = str(tmp_path / "pyrunc-state")
        self.made = []

    def __call__(self, *args, check=True):
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([PYRUNC, "--root", self.root, *args], stdout=out, stderr=err,
                               stdin=subprocess.DEVNULL, text=True, timeout=60)
            out.seek(0)
            err.seek(0)
            r = subprocess.CompletedProcess(args, p.returncode, out.read(), err.read())
        assert not check or r.returncode == 0, r
        return r

    def bundle(self, args, edit=None, terminal=False):
        cid = unique()
        path = self.tmp / cid
        path.mkdir()
        os.symlink(self.rootfs, path / "rootfs")
        spec = specconv.default_spec()
        spec["process"].update(terminal=terminal, args=list(args))
        spec["linux"]["cgroupsPath"] = f"/{cid}"
        if edit:
            edit(spec)
        with open(path / "config.json", "w") as f:
            json.dump(spec, f)
        self.made.append(cid)
        return cid, str(path)

    def run(self, args, edit=None):
        cid, bundle = self.bundle(args, edit)
        return self("run", "--bundle", bundle, cid, check=False)

    def cleanup(self):
        for cid in self.made:
            self("delete", "--force", cid, check=False)


@pytest.fixture
def pyrunc(tmp_path, rootfs):
    p = Pyrunc(tmp_path, rootfs)
    yield p
    p.cleanup()


def _set(path, value):
    """An edit of the spec: set the dotted `path` to `value`."""
    def edit(spec):
        obj = spec
        keys = path.split(".")
        for k in keys[:-1]:
            obj = obj.setdefault(k, {})
        obj[keys[-1]] = value
    return edit


@pytest.mark.skipif(not TIMENS, reason="the kernel has no time namespaces")
def test_pyrunc_time_namespace_offsets(pyrunc):
    def edit(spec):
        spec["linux"]["namespaces"].append({"type": "time"})
        spec["linux"]["timeOffsets"] = {"boottime": {"secs": 1000000}}
    r = pyrunc.run(["cat", "/proc/uptime"], edit)
    assert r.returncode == 0, r
    assert float(r.stdout.split()[0]) > 1000000


def test_pyrunc_process_fields_of_init_and_exec_process_file(pyrunc, tmp_path):
    def edit(spec):
        spec["process"]["scheduler"] = {"policy": "SCHED_IDLE"}
        spec["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
        spec["process"]["oomScoreAdj"] = 300
    cid, bundle = pyrunc.bundle(["sleep", "100"], edit)
    pyrunc("run", "-d", "--bundle", bundle, cid)
    pid = json.loads(pyrunc("state", cid).stdout)["pid"]
    with open(f"/proc/{pid}/stat") as f:
        assert stat_fields(f.read())["policy"] == 5
    with open(f"/proc/{pid}/oom_score_adj") as f:
        assert f.read().strip() == "300"
    # an exec'd process: its own fields from --process, else the init's
    proc = {"args": ["sh", "-c", "cat /proc/self/stat /proc/self/oom_score_adj; ionice -p $$"],
            "cwd": "/", "scheduler": {"policy": "SCHED_BATCH", "nice": 3},
            "ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}, "oomScoreAdj": 500}
    (tmp_path / "proc.json").write_text(json.dumps(proc))
    r = pyrunc("exec", "--process", str(tmp_path / "proc.json"), cid)
    stat, adj, io = r.stdout.splitlines()
    assert stat_fields(stat) == {"nice": 3, "rt_priority": 0, "policy": 3}
    assert (adj, io) == ("500", "idle")
    r = pyrunc("exec", cid, "sh", "-c", "cat /proc/self/stat /proc/self/oom_score_adj; "
               "ionice -p $$")
    stat, adj, io = r.stdout.splitlines()
    assert stat_fields(stat)["policy"] == 5
    assert (adj, io) == ("300", "best-effort: prio 6")


@pytest.mark.skipif(not KEYS, reason="the kernel has no keyrings")
def test_pyrunc_session_keyring_and_no_new_keyring(pyrunc):
    for flags, expected in (((), True), (("--no-new-keyring",), False)):
        cid, bundle = pyrunc.bundle(["sleep", "100"], _set("linux.maskedPaths", []))
        pyrunc("run", "-d", *flags, "--bundle", bundle, cid)
        r = pyrunc("exec", cid, "cat", "/proc/keys")
        assert (f" _ses.{cid}: " in r.stdout) is expected, r.stdout


def _listen(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    s.settimeout(30)
    return s


def _receive_fd(server):
    conn, _ = server.accept()
    with conn:
        msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    return msg, fds[0]


def test_pyrunc_pidfd_socket(pyrunc, tmp_path):
    import select
    import signal
    server = _listen(str(tmp_path / "pidfd.sock"))
    cid, bundle = pyrunc.bundle(["sleep", "100"])
    pyrunc("create", "--pidfd-socket", str(tmp_path / "pidfd.sock"), "--bundle", bundle, cid)
    msg, pidfd = _receive_fd(server)
    try:
        pid = json.loads(pyrunc("state", cid).stdout)["pid"]
        with open(f"/proc/self/fdinfo/{pidfd}") as f:
            assert f"Pid:\t{pid}\n" in f.read()
        pyrunc("start", cid)
        # an exec'd process's, too
        pyrunc("exec", "-d", "--pidfd-socket", str(tmp_path / "pidfd.sock"), "--pid-file",
               str(tmp_path / "exec.pid"), cid, "sleep", "100")
        _, execfd = _receive_fd(server)
        with open(f"/proc/self/fdinfo/{execfd}") as f:
            assert f"Pid:\t{(tmp_path / 'exec.pid').read_text()}\n" in f.read()
        os.close(execfd)
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        assert select.select([pidfd], [], [], 10)[0]      # readable: it exited
    finally:
        os.close(pidfd)
        server.close()


def test_pyrunc_dev_console_is_the_terminal(pyrunc, tmp_path):
    from conftest import read_pty
    server = _listen(str(tmp_path / "console.sock"))
    cid, bundle = pyrunc.bundle(["sh", "-c", "echo via-console > /dev/console; "
                                 "stat -L -c %t:%T /dev/console $(tty); sleep 100"],
                                terminal=True)
    pyrunc("run", "-d", "--console-socket", str(tmp_path / "console.sock"), "--bundle", bundle,
           cid)
    _, master = _receive_fd(server)
    try:
        out = read_pty(master, until=b"\n88:", timeout=15)
        out += read_pty(master, until=b"\n", timeout=5)
    finally:
        os.close(master)
        server.close()
    lines = [line.strip() for line in out.splitlines() if line.strip()]
    assert lines[0] == "via-console"
    console, tty = lines[1:3]
    assert console == tty and console.startswith("88:")     # major 136: a devpts pty


# -- what cannot be honoured: one line each, before anything exists ------------------

def _own_userns_with_other_maps(spec):
    spec["linux"]["namespaces"].append({"type": "user", "path": "/proc/1/ns/user"})
    spec["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 1000, "size": 1}]


REFUSED = [
    (_set("linux.intelRdt", {"closID": "x"}),
     "config.json: linux.intelRdt: Intel RDT is not supported by pyrunc"),
    (_own_userns_with_other_maps,
     "config.json: linux.uidMappings: differ from those of the user namespace "
     "/proc/1/ns/user being joined"),
    (_set("process.scheduler", {"policy": "SCHED_ISO"}),
     "scheduler.policy: SCHED_ISO is not implemented by Linux"),
    (_set("process.scheduler", {"policy": "SCHED_OTHER", "priority": 5}),
     "scheduler.priority: only SCHED_FIFO and SCHED_RR take a priority"),
    (_set("process.ioPriority", {"class": "IOPRIO_CLASS_BE", "priority": 9}),
     "io_priority.priority: 9 is not in 0..7"),
    (_set("process.execCPUAffinity", {"final": "4095"}),
     "exec_cpu_affinity.final: CPUs '4095' are not online"),
    (_set("linux.personality", {"domain": "PER_BSD"}),
     "personality.domain: unknown value 'PER_BSD' (known: LINUX, LINUX32)"),
    (_set("linux.memoryPolicy", {"mode": "MPOL_BIND", "nodes": "63"}),
     "memory_policy.nodes: NUMA nodes 63 are not online"),
    (_set("linux.memoryPolicy", {"mode": "MPOL_LOCAL", "nodes": "0"}),
     "memory_policy.nodes: MPOL_LOCAL takes no nodes"),
    (_set("linux.timeOffsets", {"boottime": {"secs": 5}}),
     "time_offsets: need a new time namespace"),
]
if not os.path.exists("/sys/fs/selinux/enforce"):
    REFUSED.append((_set("process.selinuxLabel", "system_u:system_r:container_t:s0"),
                    "process_label: 'system_u:system_r:container_t:s0' cannot be applied: "
                    "SELinux is not enabled on this host"))


@pytest.mark.parametrize("edit, message", REFUSED, ids=[m.split(":")[0 if not
                         m.startswith("config.json") else 1].strip() for _, m in REFUSED])
def test_pyrunc_refuses_by_name(pyrunc, edit, message):
    r = pyrunc.run(["true"], edit)
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    assert pyrunc("list", "-q").stdout == ""         # nothing was created


def test_pyrunc_exec_process_file_refuses_by_name(pyrunc, tmp_path):
    cid, bundle = pyrunc.bundle(["sleep", "100"])
    pyrunc("run", "-d", "--bundle", bundle, cid)
    for extra, message in (({"scheduler": {"policy": "SCHED_FIFO", "priority": 0}},
                            "process.scheduler.priority: 0 is not in 1..99 for SCHED_FIFO"),
                           ({"ioPriority": {"class": "IOPRIO_CLASS_NONE"}},
                            "process.io_priority.class: unknown value 'IOPRIO_CLASS_NONE'"),
                           ({"oomScoreAdj": 5000},
                            "process.oom_score_adj: 5000 is not in -1000..1000"),
                           ({"selinuxLabel": "x"}, "SELinux")):
        (tmp_path / "p.json").write_text(json.dumps({"args": ["true"], "cwd": "/", **extra}))
        r = pyrunc("exec", "--process", str(tmp_path / "p.json"), cid, check=False)
        assert r.returncode != 0 and r.stderr.count("\n") == 1, r
        assert message in r.stderr, r.stderr
    assert len(pyrunc("ps", "--format", "json", cid).stdout.strip("[]\n").split(",")) == 1


def test_pyrunc_warns_where_runc_warns(pyrunc):
    r = pyrunc.run(["uname", "-m"], _set("linux.personality", {"domain": "LINUX32",
                                                               "flags": ["ADDR_NO_RANDOMIZE"]}))
    assert r.returncode == 0, r
    assert r.stdout.strip() in ("i686", "armv8l")
    assert "config.json: linux.personality.flags: as runc: not supported, ignored" in r.stderr
    assert r.stderr.count("\n") == 1


# -- the field table ------------------------------------------------------------------

def _doc_table():
    """{path: (status, note)} of the field table in docs/pyrunc.md."""
    with open(os.path.join(REPO, "docs", "pyrunc.md")) as f:
        text = f.read()
    table = text.split("<!-- fields -->")[1]
    rows = {}
    for line in table.splitlines():
        m = re.match(r"\| `([^`]+)` \| ([\w ]+) \| (.*) \|$", line)
        if m:
            rows[m[1]] = (m[2], m[3].strip())
    return rows


def test_docs_field_table_is_specconv_fields():
    assert _doc_table() == specconv.FIELDS, \
        "regenerate the table: python -c 'from libcontainer import specconv; " \
        "print(specconv.fields_markdown())'"


def test_every_refused_field_is_refused(factory, rootfs):
    """Each `refused` row of FIELDS, set to a plausible value, fails
    conversion or validation with an error naming it (JSON path or Config
    field)."""
    samples = {"linux.intelRdt": ({"closID": "x"}, "config.json: linux.intelRdt: ")}
    refused = {p for p, (status, _) in specconv.FIELDS.items() if status == specconv.REFUSED}
    assert refused == set(samples)
    for path, (value, named) in samples.items():
        s = specconv.default_spec()
        s["root"]["path"] = rootfs
        _set(path, value)(s)
        with pytest.raises(ConfigError) as e:
            factory.create(unique(), specconv.to_config(s, "/srv/bundle", unique()))
        assert str(e.value).startswith(named), e.value


def test_every_field_of_a_full_spec_is_known(capsys):
    """A spec setting every supported field converts without an unknown-field
    warning: the walker and FIELDS agree on the spec's shape."""
    from libcontainer import log
    log.configure()
    seen = {p for p, _ in specconv.walk_fields(_full_spec())}
    assert seen - set(specconv.FIELDS) == set()
    supported = {p for p, (st, _) in specconv.FIELDS.items() if st == specconv.SUPPORTED}
    assert supported - seen == set(), "add these to _full_spec"


def _full_spec():
    s = specconv.default_spec()
    p = s["process"]
    p.update(consoleSize={"height": 1, "width": 1}, oomScoreAdj=0, apparmorProfile="",
             selinuxLabel="", scheduler={"policy": "SCHED_OTHER", "nice": 0, "priority": 0,
                                         "flags": [], "runtime": 0, "deadline": 0, "period": 0},
             ioPriority={"class": "IOPRIO_CLASS_BE", "priority": 0},
             execCPUAffinity={"initial": "0", "final": "0"})
    p["user"].update(umask=0o22, additionalGids=[1])
    p["capabilities"].update(inheritable=[], ambient=[])
    s.update(domainname="d", annotations={"a": "b"})
    s["mounts"][0].update(uidMappings=[], gidMappings=[])
    s["hooks"] = {h: [{"path": "/bin/true", "args": [], "env": [], "timeout": 1}]
                  for h in specconv.HOOKS}
    lx = s["linux"]
    lx["namespaces"].append({"type": "time", "path": "/proc/1/ns/time"})
    ids = [{"containerID": 0, "hostID": 0, "size": 1}]
    lx.update(uidMappings=ids, gidMappings=ids, timeOffsets={"boottime": {"secs": 1,
                                                                          "nanosecs": 0}},
              devices=[{"type": "c", "path": "/dev/x", "major": 1, "minor": 3,
                        "fileMode": 0o666, "uid": 0, "gid": 0}],
              cgroupsPath="/x", sysctl={"a": "b"}, rootfsPropagation="rslave", mountLabel="",
              netDevices={"eth9": {"name": "eth0"}},
              personality={"domain": "LINUX"},
              memoryPolicy={"mode": "MPOL_BIND", "nodes": "0", "flags": []},
              seccomp={"defaultAction": "SCMP_ACT_ALLOW", "defaultErrnoRet": 1,
                       "architectures": [], "flags": [], "listenerPath": "/x",
                       "listenerMetadata": "m",
                       "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                                     "args": [{"index": 0, "value": 0, "valueTwo": 0,
                                               "op": "SCMP_CMP_EQ"}]}]})
    dev = {"major": 1, "minor": 1}
    lx["resources"] = {
        "devices": [{"allow": False, "type": "a", "major": 1, "minor": 1, "access": "rwm"}],
        "memory": {"limit": 1, "reservation": 1, "swap": 1, "disableOOMKiller": False,
                   "swappiness": 1, "useHierarchy": True, "checkBeforeUpdate": True},
        "cpu": {"shares": 1, "quota": 1, "period": 1, "cpus": "0", "mems": "0", "burst": 1,
                "idle": 0, "realtimePeriod": 1, "realtimeRuntime": 1},
        "pids": {"limit": 1}, "unified": {"a": "b"},
        "network": {"classID": 1, "priorities": [{"name": "lo", "priority": 1}]},
        "rdma": {"mlx5_0": {"hcaHandles": 1, "hcaObjects": 1}},
        "blockIO": {"weight": 1, "leafWeight": 10, "weightDevice": [dict(dev, weight=1)],
                    **{k: [dict(dev, rate=1)] for k in
                       ("throttleReadBpsDevice", "throttleWriteBpsDevice",
                        "throttleReadIOPSDevice", "throttleWriteIOPSDevice")}},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}
    return s


# -- features: every claim is used ----------------------------------------------------

@pytest.fixture(scope="module")
def features():
    r = subprocess.run([PYRUNC, "features"], capture_output=True, text=True, check=True)
    return json.loads(r.stdout)


def test_features_namespaces_each_used(features, factory, rootfs):
    from libcontainer.linux.namespaces import NAMESPACES
    assert {"pid", "mount", "time", "user"} <= set(features["linux"]["namespaces"])
    for kind in features["linux"]["namespaces"]:
        s = specconv.default_spec()
        s["linux"]["namespaces"] = [{"type": k} for k in {"mount", "pid", kind}]
        s["hostname"] = ""
        s["mounts"] = [m for m in s["mounts"] if m["destination"] in ("/proc", "/dev")]
        if kind == "user":
            ids = [{"containerID": 0, "hostID": 0, "size": 65536}]
            s["linux"].update(uidMappings=ids, gidMappings=ids)
        config = specconv.to_config(s, os.path.dirname(rootfs), unique())
        config.rootfs = rootfs
        c = factory.create(unique(), config)
        try:
            c.start(libcontainer.Process(args=["sleep", "100"]))
            nsfile = NAMESPACES[specconv.NAMESPACES[kind]][1]
            assert os.readlink(f"/proc/{c.init_pid}/ns/{nsfile}") != \
                os.readlink(f"/proc/self/ns/{nsfile}"), kind
        finally:
            c.destroy()


def test_features_mount_options_each_parse(features):
    for opt in features["mountOptions"]:
        s = specconv.default_spec()
        s["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                            "options": ["bind", opt]})
        specconv.to_config(s, "/srv/bundle", unique())     # no ConfigError
    assert features["linux"]["mountExtensions"]["idmap"]["enabled"]
    s = specconv.default_spec()
    ids = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    s["mounts"].append({"destination": "/mnt", "type": "bind", "source": "/tmp",
                        "options": ["rbind", "idmap"], "uidMappings": ids, "gidMappings": ids})
    (m,) = [m for m in specconv.to_config(s, "/srv/bundle", unique()).mounts
            if m.destination == "/mnt"]
    assert m.idmap


def test_features_seccomp_claims_each_accepted(features):
    from libcontainer.linux import seccomp
    sc = features["linux"]["seccomp"]
    assert sc["enabled"] and "SCMP_ACT_NOTIFY" in sc["actions"]
    for action in sc["actions"]:
        seccomp.parse({"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/agent.sock",
                       "syscalls": [{"names": ["getppid"], "action": action}]})
    for op in sc["operators"]:
        seccomp.parse({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["getppid"], "action": "SCMP_ACT_ERRNO",
             "args": [{"index": 0, "value": 1, "valueTwo": 1, "op": op}]}]})
    for arch in sc["archs"]:
        seccomp.parse({"defaultAction": "SCMP_ACT_ALLOW", "architectures": [arch]})
    for flag in sc["supportedFlags"]:
        seccomp.parse({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]})


def test_features_refused_are_not_claimed(features):
    assert features["linux"]["intelRdt"] == {"enabled": False}
    if features["linux"]["cgroup"]["rdma"]:
        specconv.to_resources({"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10}}})
    lx = specconv.default_spec()["linux"]
    for mode in features["linux"]["memoryPolicy"]["modes"]:
        lx["memoryPolicy"] = {"mode": mode, "nodes": "" if mode in ("MPOL_DEFAULT",
                                                                    "MPOL_LOCAL") else "0"}
        config = specconv.to_config({"root": {"path": "/"}, "linux": lx}, "/", unique())
        from libcontainer.plugins import process_attrs
        process_attrs.libcontainer_validate_config(config)


def test_pyrunc_userns_path_with_its_own_mappings_is_accepted(pyrunc, tmp_path):
    """containerd and CRI-O pass a userns path and its mappings: as runc, fine
    when the mappings are the namespace's own."""
    ids = [{"containerID": 0, "hostID": 0, "size": 65536}]

    def own(spec):
        spec["linux"]["namespaces"].append({"type": "user"})
        spec["linux"].update(uidMappings=ids, gidMappings=ids)
    first, bundle = pyrunc.bundle(["sleep", "100"], own)
    pyrunc("run", "-d", "--bundle", bundle, first)
    pid = json.loads(pyrunc("state", first).stdout)["pid"]

    # pinned (a bind mount of the nsfs file, as CRI-O keeps them): the maps
    # are read by a child that joins it
    pinned = tmp_path / "userns"
    pinned.touch()
    subprocess.run(["mount", "--bind", f"/proc/{pid}/ns/user", str(pinned)], check=True)
    try:
        for path in (f"/proc/{pid}/ns/user", str(pinned)):
            def join(spec, path=path, ids=ids):
                spec["linux"]["namespaces"].append({"type": "user", "path": path})
                spec["linux"].update(uidMappings=ids, gidMappings=ids)
            r = pyrunc.run(["readlink", "/proc/self/ns/user"], join)
            assert r.returncode == 0, r
            assert r.stdout.strip() == os.readlink(f"/proc/{pid}/ns/user")
        r = pyrunc.run(["true"], lambda s: join(s, str(pinned), [dict(ids[0], size=1)]))
        assert r.returncode == 1 and "linux.uidMappings: differ from those of the user " \
            f"namespace {pinned} being joined" in r.stderr, r
    finally:
        subprocess.run(["umount", str(pinned)], check=True)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_pyrunc_exec_cpu_affinity_after_the_cgroup_join(pyrunc, tmp_path):
    cpu = str(max(os.sched_getaffinity(0)))
    cid, bundle = pyrunc.bundle(["sleep", "100"],
                                _set("process.execCPUAffinity", {"final": cpu}))
    pyrunc("run", "-d", "--bundle", bundle, cid)
    # config.json's execCPUAffinity is for exec'd processes, not the init
    pid = json.loads(pyrunc("state", cid).stdout)["pid"]
    assert os.sched_getaffinity(pid) == os.sched_getaffinity(0)
    r = pyrunc("exec", cid, "grep", "Cpus_allowed_list", "/proc/self/status")
    assert r.stdout.split()[-1] == cpu
    (tmp_path / "p.json").write_text(json.dumps({
        "args": ["grep", "Cpus_allowed_list", "/proc/self/status"], "cwd": "/",
        "execCPUAffinity": {"initial": cpu, "final": "0"}}))
    r = pyrunc("exec", "--process", str(tmp_path / "p.json"), cid)
    assert r.stdout.split()[-1] == "0"


def test_pyrunc_update_resources_file_reports_ignored_fields(pyrunc, tmp_path):
    cid, bundle = pyrunc.bundle(["sleep", "100"])
    pyrunc("run", "-d", "--bundle", bundle, cid)
    (tmp_path / "r.json").write_text(json.dumps({"pids": {"limit": 50},
                                                 "memory": {"shoeSize": 1}}))
    r = pyrunc("update", "--resources", str(tmp_path / "r.json"), cid)
    assert "r.json: linux.resources.memory.shoeSize: unknown field ignored" in r.stderr


def test_nsinit_container_json_takes_the_new_fields(tmp_path, rootfs):
    from conftest import nsinit
    from libcontainer import sample
    data = sample.config_dict(rootfs)
    data.update(cgroups=None, networks=[], personality={"domain": "LINUX32"},
                scheduler={"policy": "SCHED_BATCH", "nice": 4},
                io_priority={"class_": "IOPRIO_CLASS_BE", "priority": 2},
                time_offsets={"boottime": {"secs": 500000}})
    data["namespaces"].append({"type": "NEWTIME"})
    (tmp_path / "container.json").write_text(json.dumps(data))
    r = nsinit("exec", "--id", unique(), "sh", "-c",
               "uname -m; cut -d' ' -f1 /proc/uptime; ionice -p $$; cat /proc/self/stat",
               root=str(tmp_path / "state"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    machine, uptime, io, stat = r.stdout.splitlines()
    assert machine in ("i686", "armv8l") and float(uptime) > 500000
    assert io == "best-effort: prio 2"
    assert stat_fields(stat) == {"nice": 4, "rt_priority": 0, "policy": 3}


@pytest.mark.skipif(not os.path.exists("/usr/sbin/runc"), reason="runc is not installed")
def test_features_has_runcs_shape(features):
    runc = json.loads(subprocess.run(["/usr/sbin/runc", "features"], capture_output=True,
                                     text=True, check=True).stdout)

    def shape(d):
        return {k: shape(v) if isinstance(v, dict) else type(v).__name__
                for k, v in d.items() if k not in ("annotations",)}

    def missing(theirs, ours, at=""):
        for k, v in theirs.items():
            if k not in ours:
                yield at + k
            elif isinstance(v, dict):
                yield from missing(v, ours[k], f"{at}{k}.")
    assert list(missing(shape(runc), shape(features))) == []


def test_session_keyring_as_runcs(pyrunc, tmp_path):
    """The same keyring, name and permissions, as runc gives its containers."""
    runc = "/usr/sbin/runc"
    if not os.path.exists(runc):
        pytest.skip("runc is not installed")

    def keyring_line(out, cid):
        line = next((x for x in out.splitlines() if f" _ses.{cid}: " in x), None)
        assert line is not None, out
        return line.split()[3:6] + line.split()[7:8]      # perm, uid, gid, type

    edit = _set("linux.maskedPaths", [])
    cid, bundle = pyrunc.bundle(["cat", "/proc/keys"], edit)
    r = pyrunc("run", "--bundle", bundle, cid)
    mine = keyring_line(r.stdout, cid)
    theirs = unique()
    spec = json.loads(open(os.path.join(bundle, "config.json")).read())
    spec["root"]["path"] = pyrunc.rootfs         # runc refuses a symlink
    spec["linux"]["cgroupsPath"] = f"/{theirs}"
    (tmp_path / theirs).mkdir()
    (tmp_path / theirs / "config.json").write_text(json.dumps(spec))
    p = subprocess.run([runc, "--root", str(tmp_path / "runc-state"), "run", "--bundle",
                        str(tmp_path / theirs), theirs], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=60)
    if p.returncode != 0:
        pytest.skip(f"runc cannot run a container here: {p.stderr.strip()}")
    assert mine == keyring_line(p.stdout, theirs)

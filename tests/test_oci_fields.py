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
from libcontainer.errors import ConfigError, LibcontainerError

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

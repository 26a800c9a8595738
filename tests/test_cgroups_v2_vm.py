"""The cgroup v2 driver on a real unified hierarchy: run a handful of the
``[v2]`` tests of tests/test_cgroups.py inside the throw-away cgroup v2
guest of ``cgv2-vm`` (see /work/shared/tools/README-cgv2-vm.md).

The guest sees the host's / read-only with a tmpfs on top, so it uses this
checkout, its venv and build/rootfs as they are. The guest is slow (software
CPU emulation when there is no usable KVM): the selection stays small.
In the guest, the ``[v1]`` variants skip themselves, and on the host the
``[v2]`` ones do (they check the cgroup2 mount type).
"""
import re
import subprocess
import sys

import pytest

from libcontainer.plugins.cgroups import common

from conftest import CGV2_VM as TOOL, REPO, cgv2_vm_problem

# test_cgroups.py tests run in the guest; each is parametrised [v1]/[v2]
SELECTED = ["init_and_exec_join", "oom_kills_hog", "fork_bomb", "cpu_quota_throttles",
            "set_updates", "device_rules", "freeze_stops_counter",
            # tests/test_cgroups_attacks.py
            "not_taken_over", "frozen_existing", "adopted", "partial_deny", "join_sub",
            "more_resource_fields", "unlimited_lifts", "period_shortened", "cannot_serve",
            "teardown_from_the_stash"]
# "device_rules" selects two tests; "cannot_serve" five (two skip on v2)
EXPECTED = len(SELECTED) + 1 + 4
FILES = ["tests/test_cgroups.py", "tests/test_cgroups_attacks.py"]
SELECTION = f"v2 and not v1 and ({' or '.join(SELECTED)})"


def _usable():
    """None, or why cgv2-vm cannot run here."""
    if common.mode() == "unified":
        return "this host has cgroup v2: tests/test_cgroups.py runs the [v2] tests directly"
    return cgv2_vm_problem()


def test_cgroup_v2_driver_in_vm():
    why = _usable()
    if why:
        pytest.skip(why)
    cmd = [TOOL, "--timeout", "900", "--", sys.executable, "-m", "pytest", "-q",
           "-p", "no:cacheprovider", *FILES, "-k", SELECTION]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=1000)
    tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-40:])
    if result.returncode == 125:
        pytest.fail(f"the cgv2-vm guest failed to boot:\n{tail}")
    assert result.returncode == 0, f"the [v2] tests failed in the guest:\n{tail}"
    passed = re.search(r"(\d+) passed", result.stdout)
    assert passed and int(passed.group(1)) == EXPECTED, \
        f"expected {EXPECTED} [v2] tests to pass in the guest:\n{tail}"

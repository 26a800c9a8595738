"""Test-only fault injection: ``LIBCONTAINER_TEST_CRASH_AT=<point>`` makes
the process that reaches that named point SIGKILL itself (see
tests/test_reliability.py). Points: the child's phase names, and
"<step>:parent" in the runtime (post_clone, map_ids, pre_clone, exec,
post_start) and "destroy:teardown", "destroy:rmtree"."""
import os
import signal


def crash_point(name):
    if os.environ.get("LIBCONTAINER_TEST_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)
        os._exit(137)   # PID 1 of a new PID namespace ignores its own SIGKILL

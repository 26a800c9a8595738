"""The hook protocol: one spec per lifecycle phase.

Every feature of a container, built in or not, is a plugin implementing some
of these hooks. The core calls the phases in the order they appear here. Where
the order between two pieces of work matters, they are separate phases: no
spec relies on pluggy's call order among the implementations of one hook.

Processes involved:

* **parent** -- the process using the library (``nsinit``, ``pyrunc``, your
  program). It must be single-threaded while a container starts.
* **child** -- the container's init (or a joined process) after ``fork``,
  before ``execve`` of the user's program. It runs already-imported Python
  only: after ``libcontainer_enter_rootfs`` the host's site-packages are gone.
* **any** -- whichever process operates on an existing container (possibly
  another invocation of the CLI that loaded it from ``state.json``).

A plugin keeps what it must remember about a container (a cgroup path, a veth
name) in ``container.stash[<plugin name>]``, a JSON-serialisable dict that is
saved in ``state.json`` after ``libcontainer_post_clone`` and read back by
``factory.load``.

Hooks a plugin does not need can be left out, and an implementation may take
fewer arguments than the spec names: that is how a hook grows.
"""
import pluggy

hookspec = pluggy.HookspecMarker("libcontainer")


# --------------------------------------------------------------------------
# start-up
# --------------------------------------------------------------------------

@hookspec
def libcontainer_register(registry: "Registry") -> None:
    """Add backends to the registry: ``registry.add("cgroup_driver", "v1",
    obj)``, ``registry.add("network_type", "veth", obj)``. The core and the
    plugins pick backends from the registry by name; nothing races.

    Runs in any process, once, when the plugin manager is built."""


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------

@hookspec
def libcontainer_validate_config(config: "Config", registry: "Registry") -> None:
    """Check the part of the config this plugin owns; raise ``ConfigError``
    naming the field (``"cgroups.resources.memory: ..."``). ``registry``
    holds the backends of this plugin manager (is the named driver there?).

    Runs in the parent from ``factory.create``, before anything exists."""


@hookspec
def libcontainer_validate_process(container: "Container", process: "Process") -> None:
    """Check a Process's own fields, those that override the config's
    (``process.scheduler``, ``process.oom_score_adj``, ...); raise
    ``ConfigError`` naming the field (``"process.scheduler.policy: ..."``).

    Runs in the parent from ``container.start`` and ``container.run``,
    before the fork."""


@hookspec
def libcontainer_check_config(config: "Config", registry: "Registry") -> None:
    """Checks that depend on what other plugins decided in
    ``libcontainer_validate_config`` (a ``netns`` network sets the network
    namespace's path there): the config is final now. Raise ``ConfigError``
    naming the field.

    Runs in the parent from ``factory.create``, after every
    ``libcontainer_validate_config``."""


# --------------------------------------------------------------------------
# creating the init (parent side)
# --------------------------------------------------------------------------

@hookspec
def libcontainer_pre_clone(container: "Container", process: "Process") -> None:
    """Prepare host-side resources before the child exists: a cgroup
    directory, the host end of a veth pair. Import heavy modules here, not in
    the child. Record what was made in ``container.stash``; on any failure the
    core calls ``libcontainer_teardown`` of every plugin.

    Runs in the parent, for the init process only."""


@hookspec
def libcontainer_map_ids(container: "Container", process: "Process", pid: int) -> None:
    """The intermediate child `pid` has created the container's user
    namespace and waits: write ``/proc/PID/uid_map``, ``setgroups`` and
    ``gid_map`` (directly, or with newuidmap/newgidmap). Nothing else in the
    container exists yet.

    Runs in the parent, for an init whose config has a new NEWUSER."""


@hookspec
def libcontainer_post_clone(container: "Container", process: "Process", pid: int) -> None:
    """The child exists and has entered its namespaces (all but the cgroup
    namespace) and waits. Put it into its cgroup, write its uid/gid maps,
    move network interfaces into its network namespace.

    Runs in the parent, for the init and for joined processes
    (``process.init`` tells them apart)."""




# --------------------------------------------------------------------------
# in-namespace setup (child side), in this order
# --------------------------------------------------------------------------

@hookspec
def libcontainer_enter_namespaces(container: "Container", process: "Process") -> None:
    """Create the container's namespaces (``unshare``) or join those given
    by path (``setns``); for a joined process, join the init's namespaces.
    The PID namespace is already in effect: the core forks into it.

    Runs in the child, first. The parent's ``libcontainer_post_clone`` runs
    after it."""


@hookspec
def libcontainer_finish_namespaces(container: "Container", process: "Process") -> None:
    """Enter the namespaces that must wait for the parent's
    ``libcontainer_post_clone``: the cgroup namespace, once the process is in
    its cgroup.

    Runs in the child, right after the parent's go-ahead."""


@hookspec
def libcontainer_setup_mounts(container: "Container", process: "Process") -> None:
    """Mount the root filesystem's content: /proc, /sys, /dev, bind mounts,
    each destination resolved inside the rootfs, before ``pivot_root``. Also
    the sysctls: /proc/sys acts on the writer's namespaces, and later
    ``readonly_paths`` may have made it read-only.

    Runs in the child (init only), in the new mount namespace."""


@hookspec
def libcontainer_setup_devices(container: "Container", process: "Process") -> None:
    """Create device nodes under the rootfs's /dev (mounted by the previous
    phase).

    Runs in the child (init only)."""


@hookspec
def libcontainer_runtime_ready(container: "Container", process: "Process", pid: int) -> None:
    """The init is in its cgroup, its id maps are written, its network is
    set up (every ``libcontainer_post_clone`` is done), its mounts and
    device nodes are made (``libcontainer_setup_devices``); it waits before
    ``libcontainer_rootfs_ready``. OCI prestart and createRuntime hooks run
    here, as in runc.

    Runs in the parent, for the init only."""


@hookspec
def libcontainer_rootfs_ready(container: "Container", process: "Process") -> None:
    """The rootfs is mounted and populated; ``pivot_root`` comes next. The
    process's root and /proc are still the host's (OCI createContainer hooks
    run here).

    Runs in the child (init only), after ``libcontainer_setup_devices``."""


@hookspec
def libcontainer_enter_rootfs(container: "Container", process: "Process") -> None:
    """Make the rootfs the process's ``/`` (``pivot_root``, or ``chroot``
    with ``no_pivot_root``). Exactly one plugin implements this.

    Runs in the child (init only). After it, only the container's files are
    visible."""


@hookspec
def libcontainer_setup_environment(container: "Container", process: "Process") -> None:
    """Configure what is seen from inside the root: hostname, masked and
    read-only paths, the read-only remount of the rootfs.

    Runs in the child (init only), after ``libcontainer_enter_rootfs``."""


@hookspec
def libcontainer_setup_limits(container: "Container", process: "Process") -> None:
    """Apply rlimits and the OOM score, while the process still has the
    privileges to raise them.

    Runs in the child, for the init and for joined processes."""


@hookspec
def libcontainer_setup_identity(container: "Container", process: "Process") -> None:
    """Switch to the process's user and groups (``process.user``), keeping
    capabilities across the switch, and apply umask and cwd.

    Runs in the child, for the init and for joined processes."""


@hookspec
def libcontainer_setup_privileges(container: "Container", process: "Process") -> None:
    """Set the capability sets and ``no_new_privs``.

    Runs in the child, after ``libcontainer_setup_identity``."""


@hookspec
def libcontainer_seal(container: "Container", process: "Process") -> None:
    """The last setup step: load a seccomp filter. Only
    ``libcontainer_pre_exec``, the exec check and ``execve`` follow it.

    Runs in the child. For a held init (two-phase create/start), after the
    ``start`` signal."""


@hookspec
def libcontainer_pre_exec(container: "Container", process: "Process") -> None:
    """Everything is in place, the process's stdio are installed, the
    seccomp filter is loaded; for a held init, ``start`` has been called.
    What runs here is confined as the program will be (OCI startContainer
    hooks). The program is checked again afterwards (core/execguard.py).

    Runs in the child, right after ``libcontainer_seal``."""


# --------------------------------------------------------------------------
# running (parent side)
# --------------------------------------------------------------------------

@hookspec
def libcontainer_post_start(container: "Container", process: "Process", pid: int) -> None:
    """The user's program was executed as ``pid``.

    Runs in the parent (for a two-phase start, in the process that called
    ``container.exec()``)."""


# --------------------------------------------------------------------------
# queries and operations on an existing container (any process)
# --------------------------------------------------------------------------

@hookspec
def libcontainer_processes(container: "Container") -> "list[int] | None":
    """Return the host pids of every process in the container (from its
    cgroup), or None when this plugin does not track processes. The core
    merges the answers."""


@hookspec
def libcontainer_stats(container: "Container", stats: dict) -> None:
    """Add this plugin's statistics to ``stats`` under its own top-level keys
    (``"cpu"``, ``"memory"``, ``"pids"``, ``"blkio"``, ``"hugetlb"``,
    ``"network"``)."""


@hookspec
def libcontainer_freeze(container: "Container") -> None:
    """Freeze every process of the container; return when they are frozen."""


@hookspec
def libcontainer_thaw(container: "Container") -> None:
    """Thaw every process of the container."""


@hookspec
def libcontainer_update(container: "Container", resources: "Resources") -> None:
    """Apply new resource limits to the running container."""


# --------------------------------------------------------------------------
# the end
# --------------------------------------------------------------------------

@hookspec
def libcontainer_teardown(container: "Container") -> None:
    """Remove what this plugin made for the container (cgroup, host veth).
    Must be idempotent and must cope with a half-created container: the
    stash holds only what was made. The core calls every plugin's
    implementation itself, even when another raised, and reports all errors.

    Runs in any process, after every process of the container is dead."""

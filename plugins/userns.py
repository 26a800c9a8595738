"""User namespaces: validate the id mappings and write them for the child.

As root the maps are written directly. An unprivileged user may map only
its own uid and gid (one id each, with ``setgroups`` denied) unless Debian's
``uidmap`` package (newuidmap/newgidmap) and /etc/subuid, /etc/subgid ranges
grant more.
"""
import os
import pwd

from libcontainer import hookimpl
from libcontainer.errors import ConfigError, SetupError


def _read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def _sub_ranges(path, user, uid):
    """[(start, count)] granted to user in /etc/subuid-style files."""
    ranges = []
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) == 3 and parts[0] in (user, str(uid)):
                    ranges.append((int(parts[1]), int(parts[2])))
    except (OSError, ValueError):
        pass
    return ranges


def _check_maps(maps, where):
    for i, m in enumerate(maps):
        if m.size <= 0 or m.container_id < 0 or m.host_id < 0:
            raise ConfigError(f"{where}[{i}]: ids must be >= 0 and size > 0")
        if m.container_id + m.size > 2 ** 32 - 1 or m.host_id + m.size > 2 ** 32 - 1:
            raise ConfigError(f"{where}[{i}]: range exceeds the 32-bit id space")
        for j, o in enumerate(maps[:i]):
            for a, b, side in ((m.container_id, o.container_id, "container"),
                               (m.host_id, o.host_id, "host")):
                if a < b + o.size and b < a + m.size:
                    raise ConfigError(f"{where}[{i}]: {side} ids overlap {where}[{j}]")
    if len(maps) > 340:
        raise ConfigError(f"{where}: at most 340 ranges")


def _rootless_check(maps, where, own, sub_file, tool):
    user = pwd.getpwuid(os.geteuid()).pw_name
    granted = _sub_ranges(sub_file, user, os.geteuid())
    for i, m in enumerate(maps):
        if m.size == 1 and m.host_id == own:
            continue
        if not any(s <= m.host_id and m.host_id + m.size <= s + c for s, c in granted):
            if not granted:
                raise ConfigError(f"{where}[{i}]: host ids {m.host_id}-{m.host_id + m.size - 1} "
                                  f"are not yours: no {sub_file} entry for user {user}")
            raise ConfigError(f"{where}[{i}]: host ids {m.host_id}-{m.host_id + m.size - 1} "
                              f"exceed what {sub_file} grants {user}")
        import shutil       # imported here: the common case maps only our own id
        if shutil.which(tool) is None:
            raise ConfigError(f"{where}: mapping more than your own id needs {tool} "
                              f"(apt-get install uidmap)")


@hookimpl
def libcontainer_validate_config(config):
    ns = config.namespace("NEWUSER")
    if ns is None:
        if config.uid_mappings or config.gid_mappings:
            field = "uid_mappings" if config.uid_mappings else "gid_mappings"
            raise ConfigError(f"{field}: id mappings need a NEWUSER namespace")
        if os.geteuid() != 0:
            raise ConfigError("namespaces: running as an unprivileged user needs a NEWUSER "
                              "namespace with uid_mappings and gid_mappings")
        return
    if ns.path:
        return
    if _read_int("/proc/sys/user/max_user_namespaces") == 0:
        raise ConfigError("namespaces: user namespaces are disabled "
                          "(sysctl user.max_user_namespaces = 0)")
    if os.geteuid() != 0 and _read_int("/proc/sys/kernel/unprivileged_userns_clone") == 0:
        raise ConfigError("namespaces: unprivileged user namespaces are disabled "
                          "(sysctl kernel.unprivileged_userns_clone = 0)")
    for field in ("uid_mappings", "gid_mappings"):
        if not getattr(config, field):
            raise ConfigError(f"{field}: a new user namespace needs {field}")
    _check_maps(config.uid_mappings, "uid_mappings")
    _check_maps(config.gid_mappings, "gid_mappings")
    if os.geteuid() != 0:
        _rootless_check(config.uid_mappings, "uid_mappings", os.geteuid(), "/etc/subuid",
                        "newuidmap")
        _rootless_check(config.gid_mappings, "gid_mappings", os.getegid(), "/etc/subgid",
                        "newgidmap")


def _needs_helper(maps, own):
    return os.geteuid() != 0 and not (len(maps) == 1 and maps[0].size == 1
                                      and maps[0].host_id == own)


def _write(path, text):
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    except OSError as e:
        raise SetupError(f"write {path} ({text.strip()!r}): {e.strerror}") from None


@hookimpl
def libcontainer_map_ids(container, process, pid):
    config = container.config
    for maps, kind, own, tool in ((config.uid_mappings, "uid", os.geteuid(), "newuidmap"),
                                  (config.gid_mappings, "gid", os.getegid(), "newgidmap")):
        if _needs_helper(maps, own):
            args = [str(v) for m in maps for v in (m.container_id, m.host_id, m.size)]
            import subprocess
            r = subprocess.run([tool, str(pid), *args], capture_output=True, text=True)
            if r.returncode != 0:
                raise SetupError(f"{tool} {pid} {' '.join(args)}: "
                                 f"{r.stderr.strip() or 'exit status %d' % r.returncode}")
            continue
        if kind == "gid" and os.geteuid() != 0:
            _write(f"/proc/{pid}/setgroups", "deny")     # required to map our own gid
        _write(f"/proc/{pid}/{kind}_map",
               "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps))

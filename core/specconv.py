"""OCI runtime-spec bundles -> the library's Config and Process.

    spec = specconv.load_spec(bundle)                # config.json as a dict
    config = specconv.to_config(spec, bundle, container_id)
    process = specconv.to_process(spec["process"])

Follows runtime-spec 1.2: ``FIELDS`` lists every field with what is done
with it; a field pyrunc cannot honour is refused by name, unknown fields are
ignored with a warning. A known field with a value of the wrong type is an
error naming its JSON path
(``config.json: process.args: expected a list, got "sh"``). Values the
library would refuse anyway (an unknown capability, a bad mount flag) are
left to the plugins' ``libcontainer_validate_config``.

``default_spec()`` is the config.json that ``pyrunc spec`` writes.
"""
import json
import os

from . import configs, log
from .errors import ConfigError
from .linux import mount as mountsys
from .process import Process

OCI_VERSION = "1.2.1"

NAMESPACES = {"pid": "NEWPID", "network": "NEWNET", "mount": "NEWNS", "ipc": "NEWIPC",
              "uts": "NEWUTS", "user": "NEWUSER", "cgroup": "NEWCGROUP", "time": "NEWTIME"}
HOOKS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
         "poststop")

# mount options that are mount(2) flags (every name runc knows); every
# other option is filesystem data ("size=64k", "mode=755")
MOUNT_FLAGS = frozenset(mountsys.FLAGS)
PROPAGATION = frozenset({"private", "rprivate", "slave", "rslave", "shared", "rshared",
                         "unbindable", "runbindable"})
# recursive mount attributes, set with mount_setattr(AT_RECURSIVE)
RECURSIVE_OPTIONS = frozenset(mountsys.RECURSIVE)
# runc's extensions: a tmpfs copying up what it covers, id-mapped binds
EXTENSIONS = frozenset({"tmpcopyup", "notmpcopyup", "idmap", "ridmap"})
IDMAP_MOUNTS = True         # mounts[].uidMappings/gidMappings (features: mountExtensions)
# options of other runtimes' that only make sense to them: dropped
IGNORED_OPTIONS = frozenset({"copy-symlink"})

_KINDS = {dict: "an object", list: "a list", str: "a string", int: "an integer",
          bool: "true or false"}


class Reader:
    """Typed access to a JSON document; errors name the file and JSON path."""

    def __init__(self, source):
        self.source = source

    def error(self, path, message):
        return ConfigError(f"{self.source}: {path}: {message}")

    def check(self, value, kind, path):
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, kind)
        if not ok:
            raise self.error(path, f"expected {_KINDS[kind]}, got {_show(value)}")
        if kind is str and "\0" in value:
            raise self.error(path, "contains a NUL byte")
        return value

    def get(self, obj, key, kind, path, default=None):
        """obj[key] checked to be of `kind`; `default` when absent or null."""
        value = obj.get(key)
        if value is None:
            return default
        return self.check(value, kind, _join(path, key))

    def uint(self, obj, key, path, default=None, bits=32):
        value = self.get(obj, key, int, path, default)
        if value is not None and not 0 <= value < (1 << bits):
            raise self.error(_join(path, key), f"{value} is out of range")
        return value

    def strings(self, obj, key, path, default=()):
        items = self.get(obj, key, list, path)
        if items is None:
            return list(default)
        return [self.check(v, str, f"{_join(path, key)}[{i}]") for i, v in enumerate(items)]

    def objects(self, obj, key, path):
        """[(item path, item)] of a list of objects."""
        items = self.get(obj, key, list, path) or []
        where = _join(path, key)
        return [(f"{where}[{i}]", self.check(v, dict, f"{where}[{i}]"))
                for i, v in enumerate(items)]


def _join(path, key):
    return f"{path}.{key}" if path else key


def _show(value):
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- reading ----------------------------------------------------------------

def load_spec(bundle, name="config.json"):
    path = os.path.join(bundle, name)
    try:
        with open(path) as f:
            spec = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (is {bundle} an OCI bundle?)") from None
    except OSError as e:
        raise ConfigError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise ConfigError(f"{name}: not valid JSON: {e}") from None
    if not isinstance(spec, dict):
        raise ConfigError(f"{name}: expected a JSON object, got {_show(spec)}")
    return spec


def to_config(spec, bundle, container_id, systemd_cgroup=False, source="config.json"):
    """The Config for the container `container_id` of the bundle `bundle`."""
    r = Reader(source)
    r.get(spec, "ociVersion", str, "")
    check_fields(spec, source)
    root = r.get(spec, "root", dict, "")
    if root is None:
        raise r.error("root", "is required")
    root_path = r.get(root, "path", str, "root")
    if not root_path:
        raise r.error("root.path", "is required")
    linux = r.get(spec, "linux", dict, "", {})
    process = r.get(spec, "process", dict, "", {})

    config = configs.Config(rootfs=os.path.normpath(os.path.join(bundle, root_path)))
    config.readonlyfs = r.get(root, "readonly", bool, "root", False)
    config.hostname = r.get(spec, "hostname", str, "", "")
    config.domainname = r.get(spec, "domainname", str, "", "")
    config.labels = {k: r.check(v, str, f"annotations.{k}")
                     for k, v in r.get(spec, "annotations", dict, "", {}).items()}
    config.mounts = [_mount(r, m, where, bundle) for where, m in r.objects(spec, "mounts", "")]
    config.hooks = _hooks(r, r.get(spec, "hooks", dict, "", {}))
    _process_into_config(r, process, config)
    _linux_into_config(r, linux, config, container_id, systemd_cgroup)
    return config


def _process_into_config(r, p, config):
    if not p:
        return
    config.env = r.strings(p, "env", "process", config.env)
    caps = r.get(p, "capabilities", dict, "process")
    if caps is not None:
        config.capabilities = _capabilities(r, caps, "process.capabilities")
    config.rlimits = _rlimits(r, p, "process")
    config.no_new_privileges = r.get(p, "noNewPrivileges", bool, "process", False)
    config.oom_score_adj = r.get(p, "oomScoreAdj", int, "process")
    config.apparmor_profile = r.get(p, "apparmorProfile", str, "process", "")
    config.process_label = r.get(p, "selinuxLabel", str, "process", "")
    config.scheduler = _scheduler(r, p, "process")
    config.io_priority = _io_priority(r, p, "process")
    config.exec_cpu_affinity = _cpu_affinity(r, p, "process")


def _linux_into_config(r, linux, config, container_id, systemd_cgroup):
    config.namespaces = _namespaces(r, linux)
    if any(ns.type == "NEWNET" and not ns.path for ns in config.namespaces):
        config.networks = [configs.Network(type="loopback")]   # as runc: lo comes up
    config.networks += _net_devices(r, linux, config)
    config.uid_mappings = _idmaps(r, linux, "uidMappings")
    config.gid_mappings = _idmaps(r, linux, "gidMappings")
    userns = config.namespace("NEWUSER")
    if userns is not None and userns.path and (config.uid_mappings or config.gid_mappings):
        _same_mappings(r, userns.path, config)
    config.devices = _devices(r, linux)
    config.cgroups = _cgroup(r, linux, container_id, systemd_cgroup)
    config.sysctl = {k: r.check(v, str, f"linux.sysctl.{k}")
                     for k, v in r.get(linux, "sysctl", dict, "linux", {}).items()}
    seccomp = r.get(linux, "seccomp", dict, "linux")
    config.seccomp = seccomp
    config.mask_paths = r.strings(linux, "maskedPaths", "linux")
    config.readonly_paths = r.strings(linux, "readonlyPaths", "linux")
    propagation = r.get(linux, "rootfsPropagation", str, "linux", "")
    if propagation:
        if propagation not in PROPAGATION:
            raise r.error("linux.rootfsPropagation", f"unknown propagation {propagation!r}")
        config.rootfs_propagation = propagation
    config.mount_label = r.get(linux, "mountLabel", str, "linux", "")
    if linux.get("intelRdt"):
        raise r.error("linux.intelRdt", "Intel RDT is not supported by pyrunc" +
                      ("" if os.path.isdir("/sys/fs/resctrl/info") else
                       " (and this host has no resctrl filesystem)"))
    pers = r.get(linux, "personality", dict, "linux")
    if pers is not None:
        r.strings(pers, "flags", "linux.personality")     # warned about (FIELDS), as runc
        config.personality = configs.Personality(
            domain=r.get(pers, "domain", str, "linux.personality", ""))
    mp = r.get(linux, "memoryPolicy", dict, "linux")
    if mp is not None:
        config.memory_policy = configs.MemoryPolicy(
            mode=r.get(mp, "mode", str, "linux.memoryPolicy", ""),
            nodes=r.get(mp, "nodes", str, "linux.memoryPolicy", ""),
            flags=r.strings(mp, "flags", "linux.memoryPolicy"))
    for clock, o in r.get(linux, "timeOffsets", dict, "linux", {}).items():
        where = f"linux.timeOffsets.{clock}"
        r.check(o, dict, where)
        config.time_offsets[clock] = configs.TimeOffset(
            secs=r.get(o, "secs", int, where, 0), nanosecs=r.uint(o, "nanosecs", where, 0))


def _same_mappings(r, path, config):
    """As runc: mappings given with a user namespace to join must be that
    namespace's own (clients pass both); other mappings are an error."""
    maps = _userns_maps(path)
    if maps is None:
        raise r.error("linux.uidMappings", f"cannot be given with the user namespace path "
                      f"{path} (its mappings cannot be read)")
    for key, mine in (("uidMappings", config.uid_mappings),
                      ("gidMappings", config.gid_mappings)):
        theirs = maps[key]
        if mine and sorted((m.container_id, m.host_id, m.size) for m in mine) != theirs:
            raise r.error(f"linux.{key}", f"differ from those of the user namespace {path} "
                          f"being joined")


def _userns_maps(path):
    """{"uidMappings": [(inside, outside, size)...], "gidMappings": ...} of the
    user namespace at `path`, or None: /proc/PID/{uid,gid}_map for a
    /proc/PID/ns/user path, else (a pinned nsfs file) what a forked child
    that joined it reads in its own (as runc)."""
    from .linux.namespaces import CLONE, setns

    def maps_of(pid):
        maps = {}
        for key, name in (("uidMappings", "uid_map"), ("gidMappings", "gid_map")):
            with open(f"/proc/{pid}/{name}") as f:
                maps[key] = sorted(tuple(map(int, line.split())) for line in f)
        return maps
    parts = path.strip("/").split("/")
    if len(parts) == 4 and parts[0] == "proc" and parts[2:] == ["ns", "user"]:
        try:
            return maps_of(parts[1])
        except (OSError, ValueError):
            return None
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            setns(fd, CLONE.NEWUSER, path)
            os.write(w, json.dumps(maps_of("self")).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    if not data:
        return None
    return {k: [tuple(m) for m in v] for k, v in json.loads(data).items()}


# -- process ------------------------------------------------------------------

def to_process(p, source="config.json", path="process"):
    """A Process from an OCI process object (config.json's, or the
    ``--process`` file of exec)."""
    r = Reader(source)
    r.check(p, dict, path)
    args = r.strings(p, "args", path)
    if not args:
        raise r.error(_join(path, "args"), "is required and must not be empty")
    cwd = r.get(p, "cwd", str, path, "/")
    if not cwd.startswith("/"):
        raise r.error(_join(path, "cwd"), f"{cwd!r} is not an absolute path")
    user = r.get(p, "user", dict, path, {})
    where = _join(path, "user")
    uid = r.uint(user, "uid", where, 0)
    gid = r.uint(user, "gid", where, 0)
    groups = [r.check(g, int, f"{where}.additionalGids[{i}]")
              for i, g in enumerate(r.get(user, "additionalGids", list, where, []))]
    umask = r.uint(user, "umask", where)
    caps = r.get(p, "capabilities", dict, path)
    nnp = r.get(p, "noNewPrivileges", bool, path)
    return Process(
        scheduler=_scheduler(r, p, path),
        io_priority=_io_priority(r, p, path),
        cpu_affinity=_cpu_affinity(r, p, path),
        oom_score_adj=r.get(p, "oomScoreAdj", int, path),
        apparmor_profile=r.get(p, "apparmorProfile", str, path),
        process_label=r.get(p, "selinuxLabel", str, path),
        args=args,
        env=r.strings(p, "env", path),
        cwd=cwd,
        user=f"{uid}:{gid}",
        additional_groups=groups,
        umask=umask,
        tty=r.get(p, "terminal", bool, path, False),
        console_size=_console_size(r, p, path),
        capabilities=None if caps is None else _capabilities(r, caps, _join(path, "capabilities")),
        rlimits=_rlimits(r, p, path) if "rlimits" in p else None,
        no_new_privileges=nnp,
    )


def _scheduler(r, p, path):
    s = r.get(p, "scheduler", dict, path)
    if s is None:
        return None
    where = _join(path, "scheduler")
    policy = r.get(s, "policy", str, where, "")
    if not policy:
        raise r.error(f"{where}.policy", "is required")
    return configs.Scheduler(
        policy=policy, nice=r.get(s, "nice", int, where, 0),
        priority=r.get(s, "priority", int, where, 0), flags=r.strings(s, "flags", where),
        runtime=r.uint(s, "runtime", where, 0, 64), deadline=r.uint(s, "deadline", where, 0, 64),
        period=r.uint(s, "period", where, 0, 64))


def _io_priority(r, p, path):
    io = r.get(p, "ioPriority", dict, path)
    if io is None:
        return None
    where = _join(path, "ioPriority")
    return configs.IOPriority(class_=r.get(io, "class", str, where, ""),
                              priority=r.get(io, "priority", int, where, 0))


def _cpu_affinity(r, p, path):
    a = r.get(p, "execCPUAffinity", dict, path)
    if a is None:
        return None
    where = _join(path, "execCPUAffinity")
    return configs.CPUAffinity(initial=r.get(a, "initial", str, where, ""),
                               final=r.get(a, "final", str, where, ""))


def _console_size(r, p, path):
    size = r.get(p, "consoleSize", dict, path)
    if not size:
        return None
    where = _join(path, "consoleSize")
    rows, cols = r.get(size, "height", int, where, 0), r.get(size, "width", int, where, 0)
    return (rows, cols) if rows > 0 and cols > 0 else None


def _capabilities(r, caps, path):
    sets = {name: r.strings(caps, name, path) for name in
            ("bounding", "effective", "permitted", "inheritable", "ambient")}
    return configs.Capabilities(**sets)


def _rlimits(r, p, path):
    out = []
    for where, rl in r.objects(p, "rlimits", path):
        kind = r.get(rl, "type", str, where)
        if not kind:
            raise r.error(f"{where}.type", "is required")
        out.append(configs.Rlimit(type=kind, hard=r.uint(rl, "hard", where, 0, 64),
                                  soft=r.uint(rl, "soft", where, 0, 64)))
    return out


# -- mounts and hooks ----------------------------------------------------------

def _mount(r, m, where, bundle):
    dest = r.get(m, "destination", str, where, "")
    if not dest:
        raise r.error(f"{where}.destination", "is required")
    if not dest.startswith("/"):
        dest = "/" + dest        # runc accepts relative destinations, as under /
    kind = r.get(m, "type", str, where, "")
    source = r.get(m, "source", str, where, "")
    flags, propagation, data, recursive = [], [], [], []
    tmpcopyup, idmap, idmap_at = False, "", ""
    for i, opt in enumerate(r.strings(m, "options", where)):
        if opt in MOUNT_FLAGS:
            flags.append(opt)
        elif opt in PROPAGATION:
            propagation.append(opt)
        elif opt in RECURSIVE_OPTIONS:
            recursive.append(opt)
        elif opt in ("tmpcopyup", "notmpcopyup"):
            tmpcopyup = opt == "tmpcopyup"
        elif opt in ("idmap", "ridmap"):
            idmap, idmap_at = opt, f"{where}.options[{i}]"
        elif opt not in IGNORED_OPTIONS:
            data.append(opt)
    uid_maps = _idmaps(r, m, "uidMappings", where)
    gid_maps = _idmaps(r, m, "gidMappings", where)
    if uid_maps or gid_maps:
        if not (uid_maps and gid_maps):
            missing = "gidMappings" if uid_maps else "uidMappings"
            raise r.error(f"{where}.{missing}", "an id-mapped mount needs both uidMappings "
                          "and gidMappings")
        idmap, idmap_at = idmap or "idmap", idmap_at or f"{where}.uidMappings"
    if kind in ("bind", "rbind") or "bind" in flags or "rbind" in flags or not kind:
        if kind == "rbind" and "rbind" not in flags:
            flags.append("rbind")
        if "bind" not in flags and "rbind" not in flags:
            flags.append("bind")
        kind = "bind"
        if not source:
            raise r.error(f"{where}.source", "a bind mount needs a source")
        source = os.path.join(bundle, source)    # relative sources are under the bundle
    elif idmap:
        raise r.error(idmap_at, f"id-mapped mounts must be bind mounts, not {kind!r}")
    if kind == "cgroup":
        return _cgroup_mount(dest, flags, propagation)
    return configs.Mount(source=source or kind, destination=dest, device=kind, flags=flags,
                         data=",".join(data), propagation=propagation, recursive=recursive,
                         tmpcopyup=tmpcopyup and kind == "tmpfs", idmap=idmap,
                         uid_mappings=uid_maps, gid_mappings=gid_maps)


def _cgroup_mount(dest, flags, propagation):
    """An OCI "cgroup" mount: cgroup2 on a unified host (the container's own
    tree when it has a cgroup namespace); on a v1 or hybrid host a read-only
    tmpfs whose source is "cgroup": the cgroups plugin fills it with the
    container's own cgroup of each hierarchy, bound read-only, as runc does
    (mounting v1 hierarchies again would show the host's cgroups)."""
    if _host_cgroup2():
        return configs.Mount("cgroup2", dest, "cgroup2", flags, "", propagation)
    flags = [f for f in flags if f not in ("ro", "rw")] + ["ro"]
    return configs.Mount("cgroup", dest, "tmpfs", flags, "mode=755,size=4k", propagation)


def _host_cgroup2():
    """Whether /sys/fs/cgroup is a cgroup2 mount (by type: it may be a tmpfs)."""
    fstype = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields, _, rest = line.partition(" - ")
            if fields.split()[4] == "/sys/fs/cgroup":
                fstype = rest.split()[0]     # the last mount there wins
    return fstype == "cgroup2"


def _hooks(r, hooks):
    out = {}
    for name in HOOKS:
        items = []
        for where, h in r.objects(hooks, name, "hooks"):
            path = r.get(h, "path", str, where, "")
            if not path:
                raise r.error(f"{where}.path", "is required")
            timeout = r.get(h, "timeout", int, where, 0)
            if timeout < 0 or (h.get("timeout") is not None and timeout == 0):
                raise r.error(f"{where}.timeout", f"{timeout} is not a positive number")
            items.append(configs.Hook(path=path, args=r.strings(h, "args", where),
                                      env=r.strings(h, "env", where), timeout=timeout))
        if items:
            out[name] = items
    return out


# -- linux --------------------------------------------------------------------

def _namespaces(r, linux):
    out, seen = [], set()
    for where, ns in r.objects(linux, "namespaces", "linux"):
        kind = r.get(ns, "type", str, where, "")
        if kind not in NAMESPACES:
            raise r.error(f"{where}.type", f"unknown namespace type {kind!r} "
                          f"(known: {', '.join(NAMESPACES)})")
        if kind in seen:
            raise r.error(f"{where}.type", f"namespace {kind!r} is listed twice")
        seen.add(kind)
        path = r.get(ns, "path", str, where, "")
        if path and not path.startswith("/"):
            raise r.error(f"{where}.path", f"{path!r} is not an absolute path")
        out.append(configs.Namespace(type=NAMESPACES[kind], path=path))
    return out


def _net_devices(r, linux, config):
    """linux.netDevices: host interfaces moved into the container (the
    network plugin's "netdevice" type)."""
    devices = r.get(linux, "netDevices", dict, "linux", {})
    if devices and not config.has_namespace("NEWNET"):
        raise r.error("linux.netDevices", "needs a network namespace (a \"network\" entry "
                      "in linux.namespaces)")
    out = []
    for host, dev in devices.items():
        where = f"linux.netDevices.{host}"
        r.check(dev, dict, where)
        out.append(configs.Network(type="netdevice", host_interface_name=host,
                                   name=r.get(dev, "name", str, where, "")))
    return out


def _idmaps(r, obj, key, path="linux"):
    out = []
    for where, m in r.objects(obj, key, path):
        out.append(configs.IDMap(container_id=r.uint(m, "containerID", where, 0),
                                 host_id=r.uint(m, "hostID", where, 0),
                                 size=r.uint(m, "size", where, 0)))
    return out


def _devices(r, linux):
    """The default nodes (/dev/null, ...) plus the spec's, which win by path."""
    wanted = {d.path: d for d in configs.DEFAULT_AUTO_CREATED_DEVICES}
    for where, d in r.objects(linux, "devices", "linux"):
        kind = r.get(d, "type", str, where, "")
        if kind not in ("c", "b", "u", "p"):
            raise r.error(f"{where}.type", f"{kind!r} is not one of c, b, u, p")
        path = r.get(d, "path", str, where, "")
        if not path:
            raise r.error(f"{where}.path", "is required")
        mode = r.uint(d, "fileMode", where, 0o666)
        wanted[path] = configs.Device(
            type="c" if kind == "u" else kind, path=path,
            major=r.get(d, "major", int, where, 0 if kind == "p" else -1),
            minor=r.get(d, "minor", int, where, 0 if kind == "p" else -1),
            file_mode=mode & 0o7777, uid=r.uint(d, "uid", where, 0),
            gid=r.uint(d, "gid", where, 0))
    return list(wanted.values())


def _cgroup(r, linux, container_id, systemd):
    cgroup = configs.Cgroup()
    path = r.get(linux, "cgroupsPath", str, "linux", "")
    systemd_form = not path.startswith("/") and path.count(":") == 2
    if systemd:
        slice_, prefix, name = path.split(":") if systemd_form else ("", "", "")
        if path and not systemd_form:
            raise r.error("linux.cgroupsPath", f"{path!r} is not in the systemd form "
                          f"slice:prefix:name that --systemd-cgroup expects")
        cgroup.driver = "systemd"
        cgroup.parent = slice_ or "system.slice"
        name = name or f"pyrunc-{container_id}"
        cgroup.name = f"{prefix}-{name}.scope" if prefix else f"{name}.scope"
    elif systemd_form:
        raise r.error("linux.cgroupsPath", f"{path!r} is in the systemd form slice:prefix:name: "
                      f"run with --systemd-cgroup")
    else:
        if ".." in path.split("/"):     # refused before normalising: ../../x is not /x
            raise r.error("linux.cgroupsPath", f"{path!r} may not contain '..'")
        cgroup.path = os.path.normpath("/" + (path or container_id).lstrip("/"))
    resources = r.get(linux, "resources", dict, "linux")
    if resources:
        cgroup.resources = to_resources(resources, source=r.source, path="linux.resources")
        rules = [_device_rule(r, d, where)
                 for where, d in r.objects(resources, "devices", "linux.resources")]
        if rules:
            cgroup.allowed_devices = rules + list(configs.DEFAULT_ALLOWED_DEVICES)
    return cgroup


def _device_rule(r, d, where):
    kind = r.get(d, "type", str, where, "a")
    if kind not in ("a", "c", "b"):
        raise r.error(f"{where}.type", f"{kind!r} is not one of a, c, b")
    # as lenient as runc: access in any order, empty or missing is rwm, allow
    # defaults to false (a Go bool)
    access = r.get(d, "access", str, where, "") or "rwm"
    if set(access) - set("rwm"):
        raise r.error(f"{where}.access", f"{access!r} is not a combination of r, w, m")
    allow = r.get(d, "allow", bool, where, False)
    return configs.Device(type=kind, major=r.get(d, "major", int, where, -1),
                          minor=r.get(d, "minor", int, where, -1), permissions=access,
                          allow=allow)


def to_resources(res, base=None, source="config.json", path="linux.resources"):
    """An OCI LinuxResources object as Resources; fields it does not set
    keep their value in `base` (how ``update --resources`` merges)."""
    r = Reader(source)
    r.check(res, dict, path)
    out = configs.Resources() if base is None else _copy_resources(base)

    def take(section, key, field, kind=int):
        value = r.get(section[1], key, kind, section[0])
        if value is not None:
            setattr(out, field, value)

    def sub(name):
        where = _join(path, name)
        return where, r.get(res, name, dict, path, {})

    mem = sub("memory")
    for key, field in (("limit", "memory"), ("reservation", "memory_reservation"),
                       ("swap", "memory_swap"), ("kernel", "kernel_memory")):
        take(mem, key, field)
    take(mem, "disableOOMKiller", "oom_kill_disable", bool)
    take(mem, "swappiness", "memory_swappiness")
    take(mem, "checkBeforeUpdate", "memory_check_before_update", bool)
    take(mem, "useHierarchy", "memory_use_hierarchy", bool)
    cpu = sub("cpu")
    for key, field in (("shares", "cpu_shares"), ("quota", "cpu_quota"),
                       ("period", "cpu_period"), ("burst", "cpu_burst"), ("idle", "cpu_idle"),
                       ("realtimePeriod", "cpu_rt_period"),
                       ("realtimeRuntime", "cpu_rt_runtime")):
        take(cpu, key, field)
    take(cpu, "cpus", "cpuset_cpus", str)
    take(cpu, "mems", "cpuset_mems", str)
    take(sub("pids"), "limit", "pids_limit")
    blkio = sub("blockIO")
    take(blkio, "weight", "blkio_weight")
    take(blkio, "leafWeight", "blkio_leaf_weight")
    net = sub("network")
    take(net, "classID", "net_cls_classid")
    if "priorities" in net[1]:
        out.net_prio_ifpriomap = {r.get(p, "name", str, w, ""): r.get(p, "priority", int, w, 0)
                                  for w, p in r.objects(net[1], "priorities", net[0])}
    rdma = r.get(res, "rdma", dict, path)
    if rdma is not None:
        out.rdma = {dev: {k: r.uint(v, k, f"{path}.rdma.{dev}", 0, 32)
                          for k in ("hcaHandles", "hcaObjects") if k in v}
                    for dev, v in rdma.items() if r.check(v, dict, f"{path}.rdma.{dev}")}
    where = blkio[0]
    if "weightDevice" in blkio[1]:
        out.blkio_weight_device = [
            configs.WeightDevice(major=r.get(d, "major", int, w, 0),
                                 minor=r.get(d, "minor", int, w, 0),
                                 weight=r.get(d, "weight", int, w, 0))
            for w, d in r.objects(blkio[1], "weightDevice", where)]
    for key, field in (("throttleReadBpsDevice", "blkio_throttle_read_bps_device"),
                       ("throttleWriteBpsDevice", "blkio_throttle_write_bps_device"),
                       ("throttleReadIOPSDevice", "blkio_throttle_read_iops_device"),
                       ("throttleWriteIOPSDevice", "blkio_throttle_write_iops_device")):
        if key in blkio[1]:
            setattr(out, field, [
                configs.ThrottleDevice(major=r.get(d, "major", int, w, 0),
                                       minor=r.get(d, "minor", int, w, 0),
                                       rate=r.uint(d, "rate", w, 0, 64))
                for w, d in r.objects(blkio[1], key, where)])
    if "hugepageLimits" in res:
        out.hugetlb_limit = [
            configs.HugepageLimit(page_size=r.get(h, "pageSize", str, w, ""),
                                  limit=r.uint(h, "limit", w, 0, 64))
            for w, h in r.objects(res, "hugepageLimits", path)]
    unified = r.get(res, "unified", dict, path)
    if unified is not None:
        out.unified = {k: r.check(v, str, f"{path}.unified.{k}") for k, v in unified.items()}
    return out


def _copy_resources(res):
    import copy
    return copy.deepcopy(res)


# -- the default spec -------------------------------------------------------------

def default_spec(rootless=False, uid=None, gid=None):
    """A config.json to start from: busybox-friendly, a minimal capability
    set, a read-only root and the usual pseudo filesystems."""
    caps = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
    safe = ["nosuid", "noexec", "nodev"]
    devpts = ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]

    def mount(dest, kind, source, *options):
        m = {"destination": dest, "type": kind, "source": source}
        if options:
            m["options"] = list(options)
        return m

    spec = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {name: list(caps) for name in
                             ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "pyrunc",
        "mounts": [
            mount("/proc", "proc", "proc"),
            mount("/dev", "tmpfs", "tmpfs", "nosuid", "strictatime", "mode=755",
                  "size=65536k"),
            mount("/dev/pts", "devpts", "devpts", *devpts, *([] if rootless else ["gid=5"])),
            mount("/dev/shm", "tmpfs", "shm", *safe, "mode=1777", "size=65536k"),
            mount("/dev/mqueue", "mqueue", "mqueue", *safe),
            mount("/sys", "none", "/sys", "rbind", *safe, "ro") if rootless else
            mount("/sys", "sysfs", "sysfs", *safe, "ro"),
            mount("/sys/fs/cgroup", "cgroup", "cgroup", *safe, "relatime", "ro"),
        ],
        "linux": {
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(configs.DEFAULT_MASK_PATHS),
            "readonlyPaths": list(configs.DEFAULT_READONLY_PATHS),
        },
    }
    linux = spec["linux"]
    # rootless too: a network namespace of its own, loopback only
    linux["namespaces"].insert(1, {"type": "network"})
    if rootless:
        uid = os.geteuid() if uid is None else uid
        gid = os.getegid() if gid is None else gid
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": uid, "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": gid, "size": 1}]
    else:
        linux["resources"] = {"devices": [{"allow": False, "access": "rwm"}]}
    return spec


# -- every runtime-spec field, and what pyrunc does with it ---------------------

SUPPORTED, REFUSED, WARNED, OTHER_OS = "supported", "refused", "warned", "other OS"


def _rows(prefix, names, status=SUPPORTED, note=""):
    return {f"{prefix}.{n}" if prefix else n: (status, note) for n in names.split()}


# JSON path -> (status, note). "[]" stands for any list item, "*" for any key
# of a map. A path that is a prefix of others is an object the checker walks
# into; the others are leaves (a "*" leaf is a map of free keys). `refused`
# rows are refused by the conversion or a plugin's validate_config (a test
# checks each); `warned` ones are accepted and ignored with a warning;
# `other OS` ones belong to other platforms (runtime-spec: not Linux). docs/pyrunc.md shows this table
# (a test compares them).
FIELDS = {
    **_rows("", "ociVersion hostname domainname"),
    "annotations.*": (SUPPORTED, "labels"),
    **_rows("root", "path readonly"),
    **_rows("process", "terminal args env cwd noNewPrivileges oomScoreAdj"),
    **_rows("process.consoleSize", "height width"),
    **_rows("process.user", "uid gid umask additionalGids"),
    "process.user.username": (OTHER_OS, "Windows only"),
    "process.commandLine": (OTHER_OS, "Windows only"),
    **_rows("process.capabilities", "bounding effective inheritable permitted ambient"),
    **_rows("process.rlimits[]", "type soft hard"),
    "process.apparmorProfile": (SUPPORTED, "lsm plugin; refused where AppArmor is not "
                                           "enabled or the profile not loaded"),
    "process.selinuxLabel": (SUPPORTED, "lsm plugin; refused where SELinux is not enabled"),
    **_rows("process.scheduler", "policy nice priority flags runtime deadline period"),
    **_rows("process.ioPriority", "class priority"),
    **_rows("process.execCPUAffinity", "initial final", note="exec'd processes only"),
    **_rows("mounts[]", "destination source type options"),
    **_rows("mounts[]", "uidMappings gidMappings", note="id-mapped bind mounts"),
    **{f"hooks.{h}[].{k}": (SUPPORTED, "") for h in HOOKS
       for k in ("path", "args", "env", "timeout")},
    **_rows("linux.namespaces[]", "type path"),
    **_rows("linux.uidMappings[]", "containerID hostID size"),
    **_rows("linux.gidMappings[]", "containerID hostID size"),
    **_rows("linux.timeOffsets.*", "secs nanosecs", note="clocks monotonic and boottime"),
    **_rows("linux.devices[]", "type path major minor fileMode uid gid"),
    "linux.netDevices.*.name": (SUPPORTED, "moved in (renamed), moved back at delete"),
    "linux.cgroupsPath": (SUPPORTED, ""),
    **_rows("linux.resources.devices[]", "allow type major minor access"),
    **_rows("linux.resources.memory", "limit reservation swap"),
    "linux.resources.memory.disableOOMKiller": (SUPPORTED, "cgroup v1 (v2 has no such knob)"),
    **_rows("linux.resources.memory", "kernel kernelTCP", WARNED,
            "as runc: kernel memory limits are not applied, ignored"),
    **_rows("linux.resources.memory", "swappiness useHierarchy", note="cgroup v1; refused "
            "on v2 (useHierarchy: true accepted)"),
    "linux.resources.memory.checkBeforeUpdate": (SUPPORTED, "update refuses a limit below "
                                                            "the usage"),
    **_rows("linux.resources.cpu", "shares quota period cpus mems"),
    **_rows("linux.resources.cpu", "burst idle", note="refused where the kernel lacks it"),
    **_rows("linux.resources.cpu", "realtimeRuntime realtimePeriod",
            note="cgroup v1 with RT group scheduling; refused elsewhere"),
    "linux.resources.pids.limit": (SUPPORTED, ""),
    "linux.resources.blockIO.weight": (SUPPORTED, ""),
    "linux.resources.blockIO.leafWeight": (SUPPORTED, "cgroup v1 with CFQ; refused "
                                                      "elsewhere"),
    **_rows("linux.resources.blockIO.weightDevice[]", "major minor weight"),
    "linux.resources.blockIO.weightDevice[].leafWeight": (WARNED, "not applied: ignored"),
    **{f"linux.resources.blockIO.{k}[].{f}": (SUPPORTED, "")
       for k in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
                 "throttleWriteIOPSDevice") for f in ("major", "minor", "rate")},
    **_rows("linux.resources.hugepageLimits[]", "pageSize limit"),
    **_rows("linux.resources.network", "classID priorities",
            note="cgroup v1 net_cls, net_prio; refused where not mounted"),
    "linux.resources.rdma.*": (SUPPORTED, "rdma controller; refused where not available"),
    "linux.resources.unified.*": (SUPPORTED, "cgroup v2 files; refused on a v1 host, as "
                                             "runc"),
    "linux.intelRdt": (REFUSED, "Intel RDT is not supported"),
    "linux.sysctl.*": (SUPPORTED, ""),
    **_rows("linux.seccomp", "defaultAction defaultErrnoRet architectures flags"),
    **_rows("linux.seccomp", "listenerPath listenerMetadata", note="seccomp notify"),
    **_rows("linux.seccomp.syscalls[]", "names action errnoRet"),
    **_rows("linux.seccomp.syscalls[].args[]", "index value valueTwo op"),
    **_rows("linux", "rootfsPropagation maskedPaths readonlyPaths"),
    "linux.mountLabel": (SUPPORTED, "with SELinux; ignored without it, as runc"),
    "linux.personality.domain": (SUPPORTED, "LINUX or LINUX32"),
    "linux.personality.flags": (WARNED, "as runc: not supported, ignored"),
    **_rows("linux.memoryPolicy", "mode nodes flags"),
    **_rows("", "windows solaris vm zos freebsd", OTHER_OS, "not Linux"),
}


def fields_markdown():
    """FIELDS as the table in docs/pyrunc.md (paste it between the
    ``<!-- fields -->`` markers after changing a row)."""
    rows = [f"| `{p}` | {status} | {note} |" for p, (status, note) in FIELDS.items()]
    return "\n".join(["| field | status | note |", "| --- | --- | --- |", *rows])


def check_fields(spec, source="config.json", path=""):
    """Warn about the fields of `spec` (found at `path`) that are unknown or
    ignored with a warning; the refused ones are refused by the conversion
    itself."""
    for path, _ in walk_fields(spec, path):
        status, note = FIELDS.get(path, (None, ""))
        if status is None:
            log.warning(f"{source}: {path}: unknown field ignored")
        elif status == WARNED:
            log.warning(f"{source}: {path}: {note}")


def _objects():
    """Every path FIELDS walks into: the proper prefixes of its rows."""
    out = set()
    for path in FIELDS:
        parts = path.split(".")
        out.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return out


def walk_fields(obj, path="", objects=None):
    """(field path, value) of every field present in `obj`, down to FIELDS'
    leaves; keys FIELDS does not know are leaves too."""
    objects = _objects() if objects is None else objects
    if not isinstance(obj, dict):
        return
    for key, value in obj.items():
        if value is None:
            continue
        here = _join(path, "*") if _join(path, "*") in objects or \
            _join(path, "*") in FIELDS else _join(path, key)
        if here + "[]" in objects:
            for item in value if isinstance(value, list) else ():
                yield from walk_fields(item, here + "[]", objects)
        elif here in objects:
            yield from walk_fields(value, here, objects)
        else:
            yield here, value

"""About the runtime: spec, features, help; checkpoint and restore are
refused."""
import json
import os

from libcontainer.errors import LibcontainerError

from .commandline import (COMMANDS, OCI_VERSION, NoHelpTopic, Opt, UsageError, command,
                          command_help, usage_text)


@command("", Opt("bundle b", "value", None, "where to write config.json (default: here)",
                 "DIR"),
         Opt("rootless", help="a spec for a container run by an unprivileged user"))
def spec(rt, o, args):
    """Write a default config.json to start a bundle from."""
    from libcontainer import specconv
    if args:
        raise UsageError(f"spec: unexpected arguments: {' '.join(args)}")
    path = os.path.join(o.bundle or ".", "config.json")
    if os.path.exists(path):
        raise LibcontainerError(f"{path} exists: remove it first")
    with open(path, "x") as f:
        spec = specconv.default_spec(rootless=o.rootless)
        if not cgroup2_host():      # as runc: a cgroup namespace only on cgroup v2
            linux = spec["linux"]
            linux["namespaces"] = [n for n in linux["namespaces"] if n["type"] != "cgroup"]
        json.dump(spec, f, indent="\t")
        f.write("\n")


def cgroup2_host():
    """/sys/fs/cgroup is a cgroup2 filesystem (by its type: on a hybrid
    host it is a tmpfs)."""
    from libcontainer.linux.mount import fstatfs_type
    try:
        fd = os.open("/sys/fs/cgroup", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return fstatfs_type(fd) == 0x63677270      # CGROUP2_SUPER_MAGIC
    finally:
        os.close(fd)


@command("")
def features(rt, o, args):
    """Print what this runtime supports, as runtime-spec features.md JSON."""
    print(json.dumps(features_dict(rt.factory.plugin_manager), indent=4))


# runtime-spec's SeccompArch names; those libseccomp resolves are supported
SECCOMP_ARCHS = ("X86", "X86_64", "X32", "ARM", "AARCH64", "MIPS", "MIPS64", "MIPS64N32",
                 "MIPSEL", "MIPSEL64", "MIPSEL64N32", "PPC", "PPC64", "PPC64LE", "S390",
                 "S390X", "PARISC", "PARISC64", "RISCV64", "LOONGARCH64", "M68K", "SH",
                 "SHEB")


def features_dict(pm):
    """The features JSON, from the tables the code itself uses (specconv,
    the seccomp and procattr modules, the loaded plugins and drivers), so it
    cannot claim what the code would refuse."""
    import libcontainer
    from libcontainer import specconv
    from libcontainer.linux import caps, procattr
    from libcontainer.linux.namespaces import NAMESPACES
    from libcontainer.plugins import lsm
    loaded = {entry["name"] for entry, hooks in pm.plugins() if hooks is not None}
    drivers = pm.registry.names("cgroup_driver")
    seccomp = {"enabled": False}
    if "seccomp" in loaded:
        from libcontainer.linux import seccomp as sc
        if sc.available():
            seccomp = {"enabled": True, "actions": sorted(sc.ACTIONS),
                       "operators": sorted(sc.OPS),
                       "archs": sorted("SCMP_ARCH_" + a for a in SECCOMP_ARCHS
                                         if sc.arch_token(a)),
                       "knownFlags": sorted(sc.FLAGS), "supportedFlags": sorted(sc.FLAGS)}
    # a namespace type is supported when its kind is known and the kernel has it
    namespaces = sorted(t for t, kind in specconv.NAMESPACES.items()
                        if "namespaces" in loaded and
                        os.path.exists(f"/proc/self/ns/{NAMESPACES[kind][1]}"))
    fields = specconv.FIELDS
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(specconv.HOOKS) if "oci_hooks" in loaded else [],
        "mountOptions": sorted(specconv.MOUNT_FLAGS | specconv.PROPAGATION |
                               specconv.RECURSIVE_OPTIONS | specconv.EXTENSIONS),
        "linux": {
            "namespaces": namespaces,
            "capabilities": ["CAP_" + n for n in caps.NAMES],
            "cgroup": {"v1": "v1" in drivers, "v2": "v2" in drivers,
                       "systemd": "systemd" in drivers, "systemdUser": False,
                       "rdma": fields["linux.resources.rdma.*"][0] == specconv.SUPPORTED},
            "seccomp": seccomp,
            "apparmor": {"enabled": "lsm" in loaded and lsm.apparmor_enabled()},
            "selinux": {"enabled": "lsm" in loaded and lsm.selinux_enabled()},
            "intelRdt": {"enabled": fields["linux.intelRdt"][0] != specconv.REFUSED},
            "mountExtensions": {"idmap": {"enabled": specconv.IDMAP_MOUNTS}},
            "netDevices": {"enabled": fields["linux.netDevices.*.name"][0] ==
                           specconv.SUPPORTED},
            "memoryPolicy": {"modes": sorted(procattr.MPOL_MODES),
                             "flags": sorted(procattr.MPOL_FLAGS)},
        },
        "annotations": {"io.github.pyrunc.version": libcontainer.__version__},
    }


@command("[COMMAND]")
def help_(rt, o, args):
    """Show the commands, or one command's options."""
    if not args:
        print(usage_text())
    elif args[0] in COMMANDS or args[0] == "h":
        print(command_help(COMMANDS.get(args[0], COMMANDS["help"])))
    else:
        raise NoHelpTopic(args[0])


@command("ID")
def checkpoint(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("checkpoint is not supported by pyrunc")


@command("ID")
def restore(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("restore is not supported by pyrunc")

"""About the runtime: spec, features, help; checkpoint and restore are
refused."""
import json
import os

from libcontainer.errors import LibcontainerError

from .commandline import COMMANDS, OCI_VERSION, Opt, UsageError, command, command_help, usage_text


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
        json.dump(specconv.default_spec(rootless=o.rootless), f, indent="\t")
        f.write("\n")


@command("")
def features(rt, o, args):
    """Print what this runtime supports, as runtime-spec features.md JSON."""
    import libcontainer
    from libcontainer import specconv
    from libcontainer.linux import caps
    pm = rt.factory.plugin_manager
    loaded = {entry["name"] for entry, hooks in pm.plugins() if hooks is not None}
    drivers = pm.registry.names("cgroup_driver")
    seccomp = {"enabled": "seccomp" in loaded}
    try:
        from libcontainer.linux import seccomp as sc
        if seccomp["enabled"]:
            seccomp.update(actions=sorted(sc.ACTIONS), operators=sorted(sc.OPS),
                           supportedFlags=sorted(sc.FLAGS))
    except Exception:     # no libseccomp: the plugin will say so when used
        pass
    out = {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(specconv.HOOKS) if "oci_hooks" in loaded else [],
        "mountOptions": sorted(specconv.MOUNT_FLAGS | specconv.PROPAGATION),
        "linux": {
            "namespaces": sorted(specconv.NAMESPACES),
            "capabilities": ["CAP_" + n for n in caps.NAMES],
            "cgroup": {"v1": "v1" in drivers, "v2": "v2" in drivers,
                       "systemd": "systemd" in drivers, "systemdUser": False, "rdma": False},
            "seccomp": seccomp,
            "apparmor": {"enabled": "apparmor" in loaded},
            "selinux": {"enabled": "selinux" in loaded},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.pyrunc.version": libcontainer.__version__},
    }
    print(json.dumps(out, indent=4))


@command("[COMMAND]")
def help_(rt, o, args):
    """Show the commands, or one command's options."""
    if args and args[0] in COMMANDS:
        print(command_help(COMMANDS[args[0]]))
    else:
        print(usage_text())


@command("ID")
def checkpoint(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("checkpoint is not supported by pyrunc")


@command("ID")
def restore(rt, o, args):
    """Not supported: there is no CRIU support."""
    raise LibcontainerError("restore is not supported by pyrunc")

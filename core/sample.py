"""The sample container.json printed by ``nsinit config``."""
from . import configs

DEFAULT_CAPABILITIES = [
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
]


def config(rootfs="rootfs"):
    ns = ["NEWNS", "NEWUTS", "NEWIPC", "NEWPID", "NEWNET", "NEWCGROUP"]
    return configs.Config(
        rootfs=rootfs,
        hostname="nsinit",
        namespaces=[configs.Namespace(t) for t in ns],
        capabilities=list(DEFAULT_CAPABILITIES),
        networks=[configs.Network(type="loopback")],
        cgroups=configs.Cgroup(parent="/libcontainer"),     # named after the container id
        rlimits=[configs.Rlimit(type="RLIMIT_NOFILE", hard=1024, soft=1024)],
        mask_paths=list(configs.DEFAULT_MASK_PATHS),
        readonly_paths=list(configs.DEFAULT_READONLY_PATHS),
        no_new_privileges=True,
    )


def config_dict(rootfs="rootfs"):
    return config(rootfs).to_dict()

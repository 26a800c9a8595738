"""The runtime's view of its state root: where containers live, their
state as runc prints it."""
import os
import sys

from libcontainer import jsonio as json     # ~8 ms less than the json package
from libcontainer.errors import ContainerNotExists, LibcontainerError

from .commandline import OCI_VERSION, STOPPED


def default_root():
    if os.geteuid() == 0:
        return "/run/pyrunc"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return os.path.join(runtime_dir, "pyrunc")
    return f"/tmp/pyrunc-{os.geteuid()}"     # checked to be ours (stateroot)


class Runtime:
    def __init__(self, g):
        self._root = os.path.abspath(g.root or default_root())
        self._root_checked = False
        self.systemd = g.systemd_cgroup
        self._factory = None
        self.hooks = None       # a command that needs only a few hooks says which

    @property
    def root(self):
        """Checked before the first use: state in a directory another user
        can write is not to be trusted (its hooks would run as us)."""
        if not self._root_checked:
            from libcontainer.stateroot import check_root
            check_root(self._root)
            self._root_checked = True
        return self._root

    @property
    def factory(self):
        if self._factory is None:
            import libcontainer
            self._factory = libcontainer.new(self.root, hooks=self.hooks)
        return self._factory

    def state_dir(self, cid):
        return os.path.join(self.root, cid)

    def read(self, cid):
        """(state.json as a dict, status) without loading config or plugins."""
        from libcontainer import state as st
        state_dir = self.state_dir(cid)
        try:
            data = st.read(state_dir)
        except FileNotFoundError:
            raise ContainerNotExists(cid) from None
        except (OSError, ValueError) as e:
            raise LibcontainerError(f"container {cid}: state.json is unreadable ({e})") \
                from None
        return data, st.status(data, state_dir)

    def load(self, cid):
        return self.factory.load(cid)


def oci_state(cid, data, status):
    """The runtime-spec state of a container, plus runc's rootfs, created and
    owner."""
    oci = data.get("oci") or {}
    config = data.get("config") or {}
    out = {"ociVersion": OCI_VERSION, "id": cid,
           "pid": data.get("init_pid", 0) if status != STOPPED else 0,
           "status": status, "bundle": oci.get("bundle", ""),
           "rootfs": config.get("rootfs", ""), "created": data.get("created") or "",
           "owner": oci.get("owner", "")}
    if config.get("labels"):
        out["annotations"] = config["labels"]
    return out


def read_json(path, source):
    try:
        if path == "-":
            return json.load(sys.stdin)
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise LibcontainerError(f"{path}: {e.strerror}") from None
    except ValueError as e:
        raise LibcontainerError(f"{source}: not valid JSON: {e}") from None


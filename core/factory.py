"""The factory: creates containers under a state root and loads them back."""
import os

from . import log, state as st
from .container import Container
from .errors import ConfigError, ContainerExists, ContainerNotExists, LibcontainerError
from .stateroot import check_root

# a character set, not a regular expression: re costs a CLI call ~5 ms
_ALNUM = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_ID_CHARS = _ALNUM | frozenset("_.+-")

# Config fields that confine the container, and the plugin applying each:
# with that plugin disabled (LIBCONTAINER_DISABLE_PLUGINS may come from a
# daemon's environment) or not installed, the container would silently run
# without them. `capabilities` is in use unless None ([] drops them all).
FIELD_PLUGINS = {
    "capabilities": "capabilities", "no_new_privileges": "no_new_privs",
    "seccomp": "seccomp", "mask_paths": "masked_paths", "readonly_paths": "masked_paths",
    "cgroups": "cgroups", "sysctl": "sysctl", "rlimits": "rlimits",
    "apparmor_profile": "lsm", "process_label": "lsm", "mount_label": "lsm",
}
# what the init sets up once for all: no concern of a process joining later
INIT_ONLY = frozenset({"mask_paths", "readonly_paths", "sysctl", "mount_label"})
# the same for a Process's own settings (exec --cap, --apparmor, ...)
PROCESS_PLUGINS = {"capabilities": "capabilities", "no_new_privileges": "no_new_privs",
                   "rlimits": "rlimits", "apparmor_profile": "lsm", "process_label": "lsm"}


def validate_id(id):
    # every character checked: re.match with "$" accepted a trailing newline
    if not isinstance(id, str) or not 0 < len(id) <= 128 or id[0] not in _ALNUM \
            or not _ID_CHARS.issuperset(id) or ".." in id:
        raise LibcontainerError(f"invalid container id {id!r}: use 1-128 characters "
                                f"from [A-Za-z0-9_.+-], not starting with a dot or dash")


class Factory:
    def __init__(self, root, disabled=(), plugin_manager=None, hooks=None):
        self.root = os.path.abspath(root)
        self.disabled = list(disabled)
        self.hooks = hooks
        self._pm = plugin_manager

    @property
    def plugin_manager(self):
        """Loaded on first use: listing or signalling containers needs none."""
        if self._pm is None:
            from .plugin_manager import PluginManager
            self._pm = PluginManager(disabled=self.disabled, hooks=self.hooks)
        return self._pm

    def check_plugins(self, config, process=None):
        """Refuse a confining field (FIELD_PLUGINS, PROCESS_PLUGINS) whose
        plugin is disabled or absent: before create, and before a process
        joins (its runtime's environment may disable more than the
        creator's). A manager built for a few hooks cannot tell: skipped."""
        if self.hooks is not None:
            return
        pm = self.plugin_manager
        for obj, table, where in ((config, FIELD_PLUGINS, ""),
                                  (process, PROCESS_PLUGINS, "process.")):
            for field, plugin in table.items() if obj is not None else ():
                value = getattr(obj, field)
                used = value is not None if field == "capabilities" else bool(value)
                if process is not None and obj is config and field in INIT_ONLY:
                    continue
                if used and not pm.has(plugin):
                    raise ConfigError(f"{where}{field}: is set but the {plugin!r} plugin that "
                                      f"applies it is disabled or not installed: refusing to "
                                      f"run without it")

    def validate(self, config):
        pm = self.plugin_manager
        self.check_plugins(config)
        pm.hook.libcontainer_validate_config(config=config, registry=pm.registry)
        # after every plugin's decisions (a netns network sets a namespace path)
        pm.hook.libcontainer_check_config(config=config, registry=pm.registry)
        log.debug("config validated", rootfs=config.rootfs)

    def create(self, id, config):
        from .configs import Config
        validate_id(id)
        if not isinstance(config, Config):
            raise ConfigError("config must be a libcontainer.configs.Config")
        self.validate(config)
        check_root(self.root, create=True)
        state_dir = os.path.join(self.root, id)
        try:
            os.mkdir(state_dir, 0o711)
        except FileExistsError:
            raise ContainerExists(id) from None
        state = {"id": id, "init_pid": 0, "config": config.to_dict(), "stash": {}}
        container = Container(self, id, config, state)
        container.save()
        log.debug("state dir created", id=id, path=state_dir)
        return container

    def load(self, id):
        validate_id(id)
        check_root(self.root)
        state_dir = os.path.join(self.root, id)
        try:
            state = st.read(state_dir)
        except FileNotFoundError:
            raise ContainerNotExists(id) from None
        except PermissionError as e:
            raise LibcontainerError(f"container {id}: cannot read {e.filename}: "
                                    f"{e.strerror}") from None
        except (OSError, ValueError) as e:
            raise LibcontainerError(f"container {id}: state.json is unreadable or corrupt "
                                    f"({e}); 'destroy --force' can still remove it") from None
        if not isinstance(state.get("config"), dict):
            raise LibcontainerError(f"container {id}: state.json is corrupt (no config); "
                                    f"'destroy --force' can still remove it")
        return Container(self, id, None, state)

    def salvage(self, id):
        """For ``destroy --force`` of a container whose state.json is missing
        or corrupt: a Container built from what it still tells
        (state.salvage), whose destroy() kills the init if its pid is
        verifiable and tears down what the stash records."""
        from .configs import Config
        validate_id(id)
        check_root(self.root)
        state = st.salvage(os.path.join(self.root, id))
        try:
            config = Config.from_dict(state.get("config"))
        except ConfigError:
            config = Config(rootfs="/")     # teardown needs the stash, not the config
        return Container(self, id, config, state)

    def remove(self, id):
        """``destroy --force`` of a container whose state.json is missing or
        corrupt: destroy what it still tells of, then its state dir."""
        import shutil
        try:
            self.salvage(id).destroy()
        finally:
            shutil.rmtree(os.path.join(self.root, id), ignore_errors=True)

    def list(self):
        check_root(self.root)
        try:
            return sorted(n for n in os.listdir(self.root)
                          if os.path.isdir(os.path.join(self.root, n)))
        except FileNotFoundError:
            return []

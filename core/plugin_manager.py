"""Finding, loading and blocking plugins; a typed façade over pluggy.

Plugins are found only through the entry-point group ``libcontainer.plugins``
(the built-ins too). Scanning every installed distribution costs tens of
milliseconds, so the list of entry points is cached in a small JSON file keyed
by the directories on ``sys.path`` and their modification times: installing or
removing a distribution changes its site directory's mtime and so the key.
"""
import importlib
import os
import sys

from . import jsonio as json     # not the json package (re, enum: ~8 ms)
from .errors import PluginError

GROUP = "libcontainer.plugins"
DISABLE_ENV = "LIBCONTAINER_DISABLE_PLUGINS"
# Without these a container cannot be built at all.
ESSENTIAL = frozenset({"namespaces", "rootfs"})


class Registry:
    """Backends that plugins offer, by kind and name (``cgroup_driver``,
    ``network_type``, ...)."""

    def __init__(self):
        self._items = {}

    def add(self, kind, name, obj):
        self._items.setdefault(kind, {})[name] = obj

    def get(self, kind, name):
        try:
            return self._items[kind][name]
        except KeyError:
            known = ", ".join(sorted(self._items.get(kind, {}))) or "none"
            raise PluginError(f"no {kind.replace('_', ' ')} named {name!r} "
                              f"(available: {known})") from None

    def names(self, kind):
        return sorted(self._items.get(kind, {}))


def _search_path():
    # sys.path[0] is the script's directory (or "" for -c): it changes with
    # every caller and holds no installed distributions
    return sys.path[1:]


def _cache_path():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = _fnv1a("\0".join([sys.prefix, *_search_path()]))
    return os.path.join(base, "libcontainer", f"plugins-{digest}.json")


def _fnv1a(text):
    # a file name, not security: hashlib would load OpenSSL (~2 ms a call)
    h = 0xcbf29ce484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def _path_key():
    key = []
    for p in _search_path():
        try:
            key.append([p, os.stat(p or ".").st_mtime_ns])
        except OSError:
            key.append([p, None])
    return key


def discover():
    """Entry points of the group as dicts: name, value (module[:attr]),
    dist, version."""
    path, key = _cache_path(), _path_key()
    try:
        with open(path) as f:
            cached = json.load(f)
        if cached["key"] == key:
            return cached["entries"]
    except (OSError, ValueError, KeyError):
        pass
    from importlib.metadata import distributions
    entries, seen = [], set()
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == GROUP and ep.name not in seen:
                seen.add(ep.name)
                entries.append({"name": ep.name, "value": ep.value,
                                "dist": dist.metadata["Name"], "version": dist.version})
    entries.sort(key=lambda e: e["name"])
    _write_cache(path, key, entries)
    return entries


def _write_cache(path, key, entries):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump({"key": key, "entries": entries}, f)
        os.replace(tmp, path)
    except OSError:
        pass    # a read-only home only costs the scan next time


def _file_stamp(path):
    try:
        return [path, os.stat(path).st_mtime_ns]
    except (OSError, TypeError):
        return None


def _hooks_known(entry):
    """The cached hook list holds while the plugin's file is unchanged (an
    editable install changes code without touching site-packages)."""
    stamp = entry.get("file")
    return "hooks" in entry and stamp is not None and _file_stamp(stamp[0]) == stamp


def _remember_hooks(entries, pm):
    """Record in the cache which hooks each plugin implements, so that a
    later manager built for a few hooks imports only the plugins it needs."""
    changed = False
    for entry in entries:
        plugin = pm.get_plugin(entry["name"])
        if plugin is not None and not _hooks_known(entry):
            entry["hooks"] = sorted(c.name for c in pm.get_hookcallers(plugin) or [])
            entry["file"] = _file_stamp(getattr(plugin, "__file__", None))
            changed = True
    if changed:
        _write_cache(_cache_path(), _path_key(), entries)


def disabled_from_env():
    return [n.strip() for n in os.environ.get(DISABLE_ENV, "").split(",") if n.strip()]


class PluginManager:
    """The plugins of one process: call the phases through methods, not
    through ``pm.hook.<name>`` with unchecked keywords."""

    def __init__(self, disabled=(), entries=None, hooks=None):
        """`hooks`: the only hooks this manager will call (a CLI command that
        just starts or deletes a container): plugins known, from the cached
        index, to implement none of them are not imported."""
        import pluggy

        from . import hookspecs
        self.disabled = set(disabled) | set(disabled_from_env())
        refused = self.disabled & ESSENTIAL
        if refused:
            raise PluginError(f"plugin {sorted(refused)[0]!r} is essential and cannot be disabled")
        self.entries = discover() if entries is None else entries
        self._pm = _pluggy_manager(pluggy)
        self._pm.add_hookspecs(hookspecs)
        self.hook = self._pm.hook
        wanted = None if hooks is None else set(hooks)
        complete = True
        self._skipped = []      # not imported: they implement none of `hooks`
        for entry in self.entries:
            if entry["name"] in self.disabled:
                continue
            if wanted is not None and _hooks_known(entry) and not wanted & set(entry["hooks"]):
                complete = False
                self._skipped.append(entry)
                continue
            self._pm.register(_load(entry), name=entry["name"])
        if complete and entries is None:
            _remember_hooks(self.entries, self._pm)
        for name in self.disabled:
            self._pm.set_blocked(name)
        missing = ESSENTIAL - {e["name"] for e in self.entries}
        if missing:
            raise PluginError(f"essential plugin {sorted(missing)[0]!r} is not installed "
                              f"(is the libcontainer package installed?)")
        self._registry = None

    @property
    def registry(self):
        """Filled on first use, importing then the skipped plugins that offer
        backends: `start` needs none (the network types alone import socket
        and ctypes)."""
        if self._registry is None:
            for entry in self._skipped:
                if "libcontainer_register" in entry["hooks"]:
                    self._pm.register(_load(entry), name=entry["name"])
            self._skipped = []
            self._registry = Registry()
            self.hook.libcontainer_register(registry=self._registry)
        return self._registry

    def register(self, plugin, name):
        """Register an in-process plugin object (tests, embedding programs)."""
        if name in self.disabled:
            return
        registry = self.registry     # filled first: this plugin adds itself once
        self._pm.register(plugin, name=name)
        getattr(plugin, "libcontainer_register", lambda registry: None)(registry)

    def has(self, name):
        """The plugin is registered (not disabled, installed, loaded)."""
        return self._pm.get_plugin(name) is not None

    def plugins(self):
        """[(entry-point dict, hook names or None if disabled)]"""
        rows = []
        for entry in self.entries:
            plugin = self._pm.get_plugin(entry["name"])
            hooks = None
            if plugin is not None:
                hooks = sorted(c.name for c in self._pm.get_hookcallers(plugin) or [])
            rows.append((entry, hooks))
        return rows

    def call_each(self, hookname, **kwargs):
        """Call every implementation of a hook even when some raise; return
        the list of (plugin name, exception)."""
        errors = []
        for impl in reversed(getattr(self.hook, hookname).get_hookimpls()):
            try:
                impl.function(*[kwargs[a] for a in impl.argnames])
            except Exception as e:     # collected and reported by the caller
                errors.append((impl.plugin_name, e))
        return errors


def _pluggy_manager(pluggy):
    """A pluggy manager that finds a module plugin's hooks in its __dict__:
    pluggy's own lookup runs inspect.getattr_static on every name in the
    module (its imports too), ~2/3 of the registration time."""
    import types

    class Manager(pluggy.PluginManager):
        def parse_hookimpl_opts(self, plugin, name):
            if type(plugin) is not types.ModuleType:
                return super().parse_hookimpl_opts(plugin, name)
            value = plugin.__dict__.get(name)
            if type(value) is types.MethodType:
                value = value.__func__
            if type(value) is not types.FunctionType:
                return None
            opts = getattr(value, "libcontainer_impl", None)
            return opts if isinstance(opts, dict) else None

    return Manager("libcontainer")


def _load(entry):
    module, _, attr = entry["value"].partition(":")
    try:
        obj = importlib.import_module(module.strip())
        for part in filter(None, attr.strip().split(".")):
            obj = getattr(obj, part)
    except Exception as e:
        raise PluginError(f"cannot load plugin {entry['name']!r} from {entry['dist']}: "
                          f"{type(e).__name__}: {e}") from None
    return obj

"""libcontainer: create and run Linux containers from Python.

    import libcontainer
    from libcontainer import configs
    factory = libcontainer.new("/run/libcontainer")
    container = factory.create("c1", configs.Config(rootfs="/srv/rootfs", ...))
    process = libcontainer.Process(args=["/bin/true"])
    container.start(process)
    process.wait()
    container.destroy()

Starting a container forks: call it from a single-threaded process.
"""
from .errors import (ConfigError, ContainerExists, ContainerNotExists,  # noqa: F401
                     InvalidState, LibcontainerError, PluginError, SetupError)

__version__ = "0.1.0"


def new(root="/run/libcontainer", disabled=(), init_args=None, hooks=None):
    """A Factory for containers whose state lives under `root`. `disabled`
    names plugins to block. `hooks`, if given, lists the only hooks the
    caller needs (e.g. ``["libcontainer_teardown"]`` to destroy): other
    plugins are not imported. `init_args` is accepted for the seed's
    signature: the init here is a fork of the caller, not a re-executed
    binary."""
    from .factory import Factory
    return Factory(root, disabled=disabled, hooks=hooks)


def __getattr__(name):
    if name == "Process":      # lazily: dataclasses cost ~10 ms, and state/kill need none
        from .process import Process
        return Process
    if name == "configs":
        import importlib
        return importlib.import_module(".configs", __name__)
    if name == "hookimpl":     # imported lazily: pluggy costs ~25 ms
        import pluggy
        return pluggy.HookimplMarker("libcontainer")
    raise AttributeError(name)

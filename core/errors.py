"""Errors a user of the library sees; each message is one line."""
# what str.splitlines() breaks at, and the other control characters, each
# replaced by its escape (a translate table: no `re` import on the hot path)
_ESCAPES = {c: repr(chr(c))[1:-1]
            for c in (*range(0x00, 0x09), *range(0x0a, 0x20), 0x7f, 0x85, 0x2028, 0x2029)}


class LibcontainerError(Exception):
    """Base class: str(err) is the one-line message shown to the user."""

    def __str__(self):
        # a value quoted from a config (a hook's name, a path) may hold a line
        # break: escaped, so that the message stays one line
        return super().__str__().translate(_ESCAPES)


class ConfigError(LibcontainerError):
    """A configuration value is invalid; the message names the field."""


class ContainerNotExists(LibcontainerError):
    def __init__(self, id):
        super().__init__(f"container {id} does not exist")


class ContainerExists(LibcontainerError):
    def __init__(self, id):
        super().__init__(f"container {id} already exists")


class InvalidState(LibcontainerError):
    """The operation is not allowed in the container's current status."""


class PluginError(LibcontainerError):
    """A plugin could not be loaded, or disabling it is not allowed."""


class SetupError(LibcontainerError):
    """Setting up the container failed; the message says which step and why."""

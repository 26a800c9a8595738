"""Errors a user of the library sees; each message is one line."""
import re

# what str.splitlines() breaks at, and the other control characters
_BREAKS = re.compile("[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


class LibcontainerError(Exception):
    """Base class: str(err) is the one-line message shown to the user."""

    def __str__(self):
        # a value quoted from a config (a hook's name, a path) may hold a line
        # break: escaped, so that the message stays one line
        return _BREAKS.sub(lambda m: repr(m.group())[1:-1], super().__str__())


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

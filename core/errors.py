"""Errors a user of the library sees; each message is one line."""


class LibcontainerError(Exception):
    """Base class: str(err) is the one-line message shown to the user."""


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

"""Hostname and domain name of the container's UTS namespace."""
import re

from libcontainer import hookimpl
from libcontainer.errors import ConfigError
from libcontainer.linux.misc import setdomainname, sethostname

_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})?$")


@hookimpl
def libcontainer_validate_config(config):
    for field in ("hostname", "domainname"):
        value = getattr(config, field)
        if not value:
            continue
        if not _NAME.match(value):
            raise ConfigError(f"{field}: {value!r} is not a valid host name")
        if not config.has_namespace("NEWUTS"):
            raise ConfigError(f"{field}: setting it needs a NEWUTS namespace")


@hookimpl
def libcontainer_setup_environment(container, process):
    if container.config.hostname:
        sethostname(container.config.hostname)
    if container.config.domainname:
        setdomainname(container.config.domainname)

"""no_new_privs: execve can no longer grant privileges (setuid bits, file
capabilities). ``config.no_new_privileges``; ``process.no_new_privileges``
wins when it is not None."""
from libcontainer import hookimpl
from libcontainer.linux import misc


def wanted(container, process):
    if process.no_new_privileges is not None:
        return bool(process.no_new_privileges)
    return container.config.no_new_privileges


@hookimpl
def libcontainer_setup_privileges(container, process):
    if wanted(container, process):
        misc.prctl(misc.PR_SET_NO_NEW_PRIVS, 1)

"""A third-party plugin: writes a marker file inside every container."""
from libcontainer import hookimpl


@hookimpl
def libcontainer_setup_environment(container):
    # after pivot_root: this path is the container's own tmpfs
    with open("/dev/shm/marker", "w") as f:
        f.write(f"marked {container.id}\n")

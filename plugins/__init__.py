"""Built-in plugins. Each is loaded through the ``libcontainer.plugins``
entry-point group like a third-party one, and each can be disabled."""

"""nfemu's pytest plugin (entry point ``pytest11``): the ``nfemu_node`` fixture factory and
assertions whose failure messages show the trace."""

"""The ``tessera`` command: the composition root that lists the subcommands of every package.

It is the only place that knows all of them (``backend``, ``worker``, ``demo``); none of
those imports it. Subcommands are loaded lazily, so ``tessera serve`` never imports torch and
``tessera simulate`` never imports the web stack.
"""

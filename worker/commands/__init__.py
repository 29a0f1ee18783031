"""``tessera`` subcommands that run worker code (listed in ``backend.cli.COMMANDS``)."""

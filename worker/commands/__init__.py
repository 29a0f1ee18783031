"""``tessera`` subcommands that run worker code (listed in ``tessera.cli.COMMANDS``)."""

"""``python -m tessera``: the ``tessera`` command."""

from tessera.cli import main

main()

"""``tessera serve --demo``: the API, a worker subprocess and a ready-to-paint demo project.

The demo composes the other packages and nothing imports it back: it depends on ``backend``
(the app it serves, the account service), ``worker`` (the generated scenes, the worker
process's parent-death hook) and ``core`` (settings, database). Modules, one job each:

- ``environment``: the demo's ``TESSERA_*`` defaults and its stored secrets (``demo.json``);
- ``accounts``: the lead and annotator logins;
- ``scenes``: the demo project's generated images, classes and settings;
- ``seeder``: brings the project to a labeling round over the public HTTP API;
- ``worker_process``: starting and stopping ``tessera worker``;
- ``run``: the server, the worker and the seeder together, until Ctrl-C;
- ``command``: ``tessera serve`` with ``--demo`` (the API's own command otherwise).

Importing a module of this package loads no torch.
"""

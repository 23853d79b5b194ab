"""The service's own commands (keys, users, policies, rejects, the demo feed), wired into
the `liaison` command by api/cli.py; they import nothing above service."""

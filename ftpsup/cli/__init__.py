"""The `ftpsup` command line: `main` parses and dispatches, one module per larger command.

- `main`: the parser, start/stop/restart/reload/status/reopen-logs, serve and check;
- `user`: `ftpsup user add|passwd|del|disable|enable|list`;
- `cert`: `ftpsup cert`, a self-signed certificate for the TLS instances;
- `setup`: `ftpsup setup`, the one root step that readies a host.

Nothing outside this package imports it, except `ftpsup.__main__`.
"""

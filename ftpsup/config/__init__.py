"""Instance configuration, in three steps: what the keys are, reading files, judging the whole.

- `schema`: InstanceConfig (the keys, their types, ranges and defaults) and the coercion of one
  raw TOML value;
- `load`: instance files laid over _shared.toml, with every problem in them (unknown keys with a
  did-you-mean, vsftpd habits, relative paths, settings that involve several keys);
- `check`: the one judge of a configuration (`check`, used by `ftpsup check`, `start`, `reload`
  and `cert`), with `cross` for clashes between instances and what this host forbids.

Nothing is re-exported here: import from the module that defines a name.
"""

"""Who may log in, and which system account the instances run as.

- `store`: the shared user store, a TOML file read by every instance and changed by
  `ftpsup user`;
- `accounts`: the account an instance drops to (nopriv_user) and what it must be able to
  reach;
- `login_cache`: remembered password checks, so a returning client skips scrypt.

Nothing is re-exported here: import from the module that defines a name.
"""

"""TLS material and settings shared by the command line, the checks and the instances.

- `certs`: write a self-signed certificate and key; check the pair an instance names;
- `contexts`: an instance's TLS keys turned into an `ssl.SSLContext`, and the problems found
  on the way (what `ftpsup check` reports).

What happens on one connection (the handshake, the data channel's TLS, session reuse) is the
instance's business and lives in `ftpsup.server.tls*`. Nothing is re-exported here.
"""

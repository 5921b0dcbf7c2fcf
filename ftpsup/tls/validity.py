"""How long a self-signed certificate may be valid, in days.

Apart from certs.py so that the command line checks `ftpsup cert --days` without loading
cryptography (every `ftpsup` command builds the whole argument parser).
"""

from __future__ import annotations

# A certificate valid for 0 days is expired when written; past 100 years, dates near X.509's
# year 9999 (GeneralizedTime) stop being representable for no benefit.
MIN_DAYS = 1
MAX_DAYS = 36500

"""Transfers: the copy loops (copying), what one transfer owns (owner), and its task (task)."""

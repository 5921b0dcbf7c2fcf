"""The FTP session without I/O: a state machine (machine.FtpSession), the verbs it runs
(verbs_*.py, listed in table.py), and the actions it asks of its executor (actions.py)."""

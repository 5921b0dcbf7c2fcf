"""The supervisor: runs each instance as its own process, restarts it, answers `ftpsup status`."""

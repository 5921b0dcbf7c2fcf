"""ftpsup: an FTP/FTPS server with a supervisor."""

__version__ = "0.1.0"

"""Helpers of the FTPS client tests: payload sizes, where a virtual path is on disk, and the URL
curl is given for a file.
"""

from __future__ import annotations

import urllib.parse
from pathlib import Path

from tests.integration.servers import Server

SIZES = {"small": 1000, "large": 3 * 1024 * 1024 + 7}


def on_disk(srv: Server, vpath: str) -> Path:
    return srv.home / vpath.lstrip("/")


def curl_url(srv: Server, vpath: str, *, implicit: bool = False) -> str:
    url = srv.url(urllib.parse.quote(vpath))
    return "ftps://" + url.removeprefix("ftp://") if implicit else url

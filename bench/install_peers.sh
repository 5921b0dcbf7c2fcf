#!/bin/sh
# Install the benchmark's peers on Debian 12: vsftpd as a package, Pure-FTPd unpacked beside it.
#
# vsftpd and pure-ftpd both Provide and Conflict with "ftp-server", so apt will not install
# both: installing one removes the other. vsftpd is installed normally; the pure-ftpd package
# is downloaded and unpacked into bench/.peers/pure-ftpd (git-ignored), where bench/servers.py
# looks for pure-ftpd and pure-pw. Nothing of it is configured as a system service.
# pyftpdlib comes from PyPI: pip install pyftpdlib pyopenssl.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dest="$here/.peers/pure-ftpd"

# --no-upgrade: install what is missing without upgrading libraries already present.
apt-get install -y --no-upgrade vsftpd libsodium23 libcap2 libcrypt1 libpam0g libssl3 curl

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt's sandbox user must be able to write the download directory.
chmod 0777 "$work"
(cd "$work" && apt-get download pure-ftpd)
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$work"/pure-ftpd_*.deb "$dest"
"$dest/usr/sbin/pure-ftpd" --help 2>&1 | head -n 1
echo "pure-ftpd unpacked in $dest"

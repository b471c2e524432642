#!/bin/sh
# Installs the system packages the test suite drives for real (Debian). As root only;
# a developer without root installs them once by hand and this script just checks.
set -eu
need=""
# (later issues add prosody, postgresql, iproute2, nftables here)
for pkg in $need; do
    dpkg -s "$pkg" >/dev/null 2>&1 && continue
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq $need
        break
    fi
    echo "missing Debian package $pkg: run 'sudo apt-get install $need' once" >&2
    exit 1
done

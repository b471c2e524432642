#!/bin/sh
# Installs the system packages the test suite drives for real (Debian). As root only;
# a developer without root installs them once by hand and this script just checks.
set -eu
# One package a line, with what drives it.
need="
postgresql
iproute2
nftables
conntrack
prosody
chromium
fonts-dejavu-core
ejabberd
haproxy
"
# postgresql: tests/pg_server.py starts a throwaway server for the store and NBI tests.
# iproute2, nftables, conntrack: tests/nat_lab.py builds the NAT lab (knock.lab) from network
#   namespaces and veths (ip), masquerade and filter rules (nft), and rebinds it (conntrack -D).
# prosody: tests/xmpp_servers.py starts a real XMPP server for the XMPP client and connection
#   request tests, as its own user from a temporary folder.
# chromium, fonts-dejavu-core: tests/browser.py drives headless Chromium for the dashboard's
#   tests (tests/nbi/test_dashboard_browser.py); the font is what its screenshots render text in.
# ejabberd: bench/ejabberd.py runs a private one beside the built-in server and Prosody
#   (bench/xmpp.py; tests/test_bench_smoke.py runs its quick mode), and the multi-host lab
#   (knock.lab.hosts) runs one as its xmpp machine.
# haproxy: the multi-host lab's load balancer (knock.lab.hosts, tests/lab/test_hosts.py) runs
#   contrib/haproxy/knock.cfg, the configuration docs/deploy.md ships, to prove it.
missing=""
for pkg in $need; do
    status=$(dpkg-query -W -f '${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [ "$status" = installed ] || missing="$missing $pkg"
done
if [ -z "$missing" ]; then
    exit 0
fi
if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
    exit 0
fi
echo "missing Debian packages:$missing; install them once as root:" >&2
echo "    apt-get update && apt-get install -y --no-install-recommends$missing" >&2
exit 1

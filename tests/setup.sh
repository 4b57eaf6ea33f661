#!/bin/sh
# Installs what tcpshadow's tests and demo need on a fresh Debian machine that has only Node and npm:
# Deno (from npm), libpcap, and the tools the network lab drives. Idempotent; run as root.
set -eu
DENO_VERSION=2.9.6
if ! command -v deno >/dev/null 2>&1 || [ "$(deno --version | head -n1 | cut -d' ' -f2)" != "$DENO_VERSION" ]; then
  npm install --global --no-fund --no-audit --loglevel=error "deno@$DENO_VERSION"
fi
missing=""
[ -e /usr/lib/x86_64-linux-gnu/libpcap.so.0.8 ] || [ -e /usr/lib/aarch64-linux-gnu/libpcap.so.0.8 ] || missing="$missing libpcap0.8"
command -v ip >/dev/null 2>&1 || missing="$missing iproute2"
command -v nft >/dev/null 2>&1 || missing="$missing nftables"
command -v tcpdump >/dev/null 2>&1 || missing="$missing tcpdump"
command -v ethtool >/dev/null 2>&1 || missing="$missing ethtool"
command -v ping >/dev/null 2>&1 || missing="$missing iputils-ping"
command -v hping3 >/dev/null 2>&1 || missing="$missing hping3"
command -v setsid >/dev/null 2>&1 || missing="$missing util-linux"
# The comparison report is tested as a page in a real browser.
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || missing="$missing dnsmasq-base"
# The HTTP/2 lab test: nginx serves h2c online and on the target, h2load is the client.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$missing nginx"
command -v h2load >/dev/null 2>&1 || missing="$missing nghttp2-client"
if [ -n "$missing" ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
deno --version | head -n1

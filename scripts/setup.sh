#!/usr/bin/env bash
# Install what sdnscent needs on Debian 12 and build the project virtualenv.
#
#   scripts/setup.sh          as root: Debian packages, Open vSwitch, .venv
#   scripts/setup.sh --venv   only .venv (no root needed once packages exist)
#
# Idempotent and quiet: one line per step; full output goes to .cache/setup.log.
# The distro redis-server service is never started (tests run their own).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
mkdir -p .cache
LOG=$ROOT/.cache/setup.log
: >"$LOG"

DEB_PACKAGES=(openvswitch-switch mininet redis-server iperf3 tcpdump iputils-ping
              ethtool iproute2 nftables cgroup-tools python3-venv clang llvm bpftool
              chromium dnsmasq-base udhcpc)  # the last two: the DHCP Mininet test
VENV=.venv
STAMP=$VENV/.sdnscent-install.stamp
PKG_FILES=(setup.py setup.cfg pyproject.toml)

step() { printf 'setup: %-16s %s\n' "$1" "$2"; }
fail() {
    printf 'setup: FAILED: %s (full log: %s)\n' "$1" "$LOG" >&2
    tail -n 15 "$LOG" >&2
    exit 1
}
# Run a command with its output in the log; fail with the log tail on error.
logged() {
    printf '\n$ %s\n' "$*" >>"$LOG"
    "$@" >>"$LOG" 2>&1 || fail "$*"
}

debian_packages() {
    local missing=() pkg
    for pkg in "${DEB_PACKAGES[@]}"; do
        [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$pkg" 2>/dev/null) == ii* ]] \
            || missing+=("$pkg")
    done
    if ((${#missing[@]} == 0)); then
        step packages "ok (already installed)"
        return
    fi
    ((EUID == 0)) || fail "missing Debian packages: ${missing[*]} (run as root)"
    # Keep package scripts from starting services (redis-server, OVS) on hosts
    # without a policy of their own; OVS is started explicitly below.
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    local start=$SECONDS
    logged apt-get update
    logged env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends "${missing[@]}"
    step packages "installed ${missing[*]} ($((SECONDS - start)) s)"
}

open_vswitch() {
    if ovs-vsctl --timeout=5 show >/dev/null 2>&1; then
        step openvswitch "ok (running)"
        return
    fi
    ((EUID == 0)) || fail "Open vSwitch is not running (run as root to start it)"
    # Without the openvswitch kernel module ovs-ctl skips it; the userspace
    # datapath (datapath_type=netdev) still works.
    logged /usr/share/openvswitch/scripts/ovs-ctl start --system-id=random
    logged ovs-vsctl --timeout=10 show
    step openvswitch "started"
}

virtualenv() {
    if [[ -x $VENV/bin/python ]]; then
        step virtualenv "ok ($VENV exists)"
    else
        # System site-packages: Mininet comes from the Debian package.
        logged /usr/bin/python3 -m venv --system-site-packages "$VENV"
        step virtualenv "created $VENV"
    fi
    local want
    want=$(cat "${PKG_FILES[@]}" | sha256sum | cut -d' ' -f1)
    if [[ -f $STAMP && $(<"$STAMP") == "$want" ]]; then
        step python-deps "ok (up to date)"
    else
        local start=$SECONDS
        logged "$VENV/bin/pip" install -q -e '.[test]'
        echo "$want" >"$STAMP"
        step python-deps "installed -e .[test] ($((SECONDS - start)) s)"
    fi
    logged "$VENV/bin/python" -c 'import mininet, os_ken, networkx, flask, scapy'
    step imports "ok (mininet os_ken networkx flask scapy)"
}

case ${1:-} in
    "") debian_packages; open_vswitch; virtualenv ;;
    --venv) virtualenv ;;
    *) echo "usage: $0 [--venv]" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# PostgreSQL for the tests' throw-away servers (Sources/CPNPTesting/TemporaryPostgres.swift: initdb,
# pg_ctl, psql in a temporary directory). Installs Debian's postgresql only when missing (idempotent).
# The system cluster the package creates is never used: it is stopped and not started at boot.
set -euo pipefail
shopt -s nullglob
initdbs=(/usr/lib/postgresql/*/bin/initdb)
if [ ${#initdbs[@]} -eq 0 ] || ! command -v psql >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    echo "installing: postgresql"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    # policy-rc.d exit 101 keeps the package from starting its cluster during the install.
    policy_rc_added=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        policy_rc_added=yes
    fi
    $SUDO apt-get install -y -qq postgresql
    if [ -n "$policy_rc_added" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
    # Stop and disable any system cluster (harmless when none runs or there is no systemd).
    if command -v pg_lsclusters >/dev/null 2>&1; then
        pg_lsclusters --no-header 2>/dev/null | while read -r version cluster _; do
            $SUDO pg_ctlcluster "$version" "$cluster" stop 2>/dev/null || true
        done
    fi
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
        $SUDO systemctl disable --now postgresql >/dev/null 2>&1 || true
    fi
fi
getent passwd postgres >/dev/null || { echo "postgresql installed but no postgres user"; exit 1; }

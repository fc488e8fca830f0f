#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the console's browser tests
# (Tests/CPNPIntegrationTests/Support/WebDriver.swift), and NSS's certutil/pk12util to give the
# browser a customer's client certificate. Installs Debian's chromium, chromium-driver and
# libnss3-tools only when missing (idempotent).
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/lib/chromium/chromedriver ] || need+=(chromium-driver)
command -v pk12util >/dev/null 2>&1 || need+=(libnss3-tools)
if [ ${#need[@]} -gt 0 ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    echo "installing: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq "${need[@]}"
fi

#!/usr/bin/env bash
# Issue 3 (secure transport): OpenSSL 3 headers/libraries for the COpenSSL system library,
# and the openssl CLI for the interop tests. Idempotent: installs only when missing.
set -euo pipefail
if ! dpkg -s libssl-dev >/dev/null 2>&1 || ! command -v openssl >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y libssl-dev openssl pkg-config
fi

#!/usr/bin/env bash
# Formats the Swift sources with the toolchain's swift-format and the repository's .swift-format
# (150 columns, 4 spaces, layout only: no rule rewrites code). `scripts/format.sh --check` changes
# nothing and fails when a file is not formatted (CI runs it).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(Sources Tests Benchmarks Fuzz/Sources Package.swift)
if [ "${1:-}" = "--check" ]; then
    swift format lint --strict --parallel --recursive "${paths[@]}"
else
    swift format format --in-place --parallel --recursive "${paths[@]}"
fi

#!/usr/bin/env bash
# Runs every test: unit and golden tests, then the end-to-end tests on a lab of
# real hosts (tests/e2e, one shared lab, always taken down). Needs root; installs
# what it needs (scripts/install-deps.sh) and builds the test image first.
# Extra arguments go to cargo test (e.g. `-- redis` after `--test e2e`).
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_root
cd "$repo"

step "dependencies"
bash scripts/install-deps.sh
find_cargo

step "test image (no registry): images/build.sh"
bash images/build.sh

step "cargo test --all-targets --no-fail-fast $*"
started=$(date +%s)
cargo test --all-targets --no-fail-fast "$@"
echo "scripts/test.sh: tests took $(( $(date +%s) - started ))s"

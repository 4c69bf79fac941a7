#!/usr/bin/env bash
# Runs every test: unit and golden tests, then the end-to-end tests on a lab of
# real hosts (tests/e2e, one shared lab, always taken down). Needs root; installs
# what it needs (scripts/install-deps.sh) and builds the test image first.
# With arguments, runs `cargo test ARGS` instead (e.g. `--test e2e -- redis`).
set -euo pipefail
source "$(dirname "$0")/common.sh"
require_root "$@"
cd "$repo"

step "dependencies"
bash scripts/install-deps.sh
find_cargo

step "test image (no registry): images/build.sh"
bash images/build.sh

started=$(date +%s)
if [ $# -eq 0 ]; then
  step "cargo test --all-targets --no-fail-fast"
  cargo test --all-targets --no-fail-fast
else
  step "cargo test $*"
  cargo test "$@"
fi
echo "scripts/test.sh: tests took $(( $(date +%s) - started ))s"

# Shared by scripts/demo.sh, scripts/test.sh and .ci/run (sourced, not run).
# Finds (or installs) cargo, builds geartopo, and says what it does.

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$repo/target}

step() {
  if [ -t 1 ] && [ -z "${NO_COLOR:-}" ]; then
    printf '\n\033[1m==> %s\033[0m\n' "$*"
  else
    printf '\n==> %s\n' "$*"
  fi
}

require_root() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "$0: needs root (network namespaces, sshd, podman): sudo bash $0" >&2
    exit 1
  fi
}

# cargo from PATH, from root's or the sudo user's rustup, or a fresh rustup install.
find_cargo() {
  if command -v cargo >/dev/null; then return; fi
  for home in "$HOME" "$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)"; do
    if [ -x "$home/.cargo/bin/cargo" ]; then
      export PATH="$home/.cargo/bin:$PATH"
      [ -d "$home/.rustup" ] && export RUSTUP_HOME="$home/.rustup"
      return
    fi
  done
  echo "cargo not found: installing Rust with rustup (minimal profile)"
  command -v curl >/dev/null || apt-get install -y -qq curl ca-certificates >/dev/null
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal >/dev/null
  export PATH="$HOME/.cargo/bin:$PATH"
}

# Builds the geartopo binary; sets $geartopo to its path.
build_geartopo() {
  (cd "$repo" && cargo build --quiet --bin geartopo)
  geartopo=$target_dir/debug/geartopo
}

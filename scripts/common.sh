# Shared by scripts/demo.sh, scripts/test.sh, scripts/install-deps.sh, .ci/run and
# bench/run.sh (sourced, not run).
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

# Returns when run as root (and never calls sudo then: a machine where you are root
# may have none). Otherwise says how to run the script as root and exits 1.
# Arguments: the script's own, repeated in the command shown; $root_needed_for
# says why root is needed (default: the lab's).
require_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  local cmd
  cmd="bash $(printf '%q' "$0")"
  [ $# -eq 0 ] || cmd="$cmd$(printf ' %q' "$@")"
  {
    echo "$0 needs root (${root_needed_for:-network namespaces, sshd, podman})."
    echo "Run it as root: \`sudo $cmd\`, or \`su -c '$cmd'\` where sudo is missing."
  } >&2
  exit 1
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

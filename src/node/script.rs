//! The one renderer of node operations: `render` turns operations into the shell
//! script a node runs, one script per round trip, for the node's `NodeProfile`
//! (podman and docker differ only here; a firewall backend or a way to become
//! root would too). Built from validated names with every argument quoted; sent on
//! stdin to `sh -s`, so the command line itself is always the same. Pure text, no
//! I/O. Every script is pinned by a golden file (tests/golden/scripts), which
//! shellcheck reads in CI.

use super::durable::{self, HOOKS_DIR, HOOK_FILE, STATE_DIR};
use super::lock::{LockHolder, HELD_PREFIX, INFO_PREFIX};
use super::section::Section;
use super::{CreateSpec, Firewall, NodeOp, NodeProfile, OwnedRules, LOCK_HELD, RELEASED, SYSCTLS};
use crate::rules::{CHAINS, TABLES};
use crate::topology::model::Runtime;
use crate::transport::shell::{join, quote};

pub mod digest;
pub mod health;
pub mod supervise;

/// The command line every script is run with: the script comes on stdin.
pub const SHELL: &str = "sh -s";

/// Exit status of a round trip on a `sudo` node whose `sudo -n` was refused (it
/// wanted a password, or the user may not use it): nothing of the script ran.
pub const SUDO_REFUSED: i32 = 77;

/// The variables a node's sessions may carry that scripts read (the lock's run
/// directory, podman's configuration, docker's socket): `sudo` resets the
/// environment, so on a `sudo` node the ones that are set are passed to the root
/// shell explicitly, by name. `PATH` is not: root's commands are found on sudo's
/// own `secure_path`.
pub const SUDO_PASSED_ENV: [&str; 4] = [
    "GEARTOPO_RUN_DIR",
    "CONTAINERS_CONF",
    "CONTAINERS_STORAGE_CONF",
    "DOCKER_HOST",
];

/// The command line a node's scripts run with: `sh -s`, or on a `sudo` node the
/// same shell as root through `sudo -n` (never a prompt: a sudo that wants a
/// password ends the round trip with `SUDO_REFUSED` before anything ran). The
/// outer `sh -c '...'` makes the line mean the same whatever the user's login
/// shell is; the variables set in the session are passed as `env NAME=value`.
pub fn command_line(profile: &NodeProfile) -> String {
    wrap(profile, SHELL)
}

/// `command` (which reads the script on stdin) as the node's profile runs it: as
/// it is, or as root through `sudo -n` with the session variables scripts read.
pub fn wrap(profile: &NodeProfile, command: &str) -> String {
    if !profile.sudo {
        return command.to_string();
    }
    let pass: Vec<String> = SUDO_PASSED_ENV
        .iter()
        .map(|v| format!("${{{v}+\"{v}=${v}\"}}"))
        .collect();
    let inner = format!(
        "sudo -n true || exit {SUDO_REFUSED}; exec sudo -n env {} {command}",
        pass.join(" ")
    );
    format!("sh -c {}", quote(&inner))
}

/// The script for `ops`, run in order in one round trip.
pub fn render(profile: &NodeProfile, ops: &[NodeOp]) -> String {
    ops.iter().map(|op| render_one(profile, op)).collect()
}

fn render_one(profile: &NodeProfile, op: &NodeOp) -> String {
    let runtime = profile.runtime;
    match op {
        NodeOp::Observe {
            topology,
            images,
            subnets,
        } => observe_script(profile, topology, images, *subnets),
        // The images are not part of what a plan depends on: none asked.
        NodeOp::Digest {
            topology,
            scope,
            subnets,
        } => digest::script(
            &observe_script(profile, topology, &[], *subnets),
            topology,
            scope,
        ),
        NodeOp::Lock { holder } => lock_script(holder),
        NodeOp::Unlock { holder } => unlock_script(holder),
        NodeOp::Release { holder } => release_script(holder),
        NodeOp::ReadLock => read_lock_script(),
        NodeOp::ForceUnlock { line } => force_unlock_script(line),
        NodeOp::Create(spec) => create_script(profile, spec),
        NodeOp::Init { container } => init_script(runtime, container),
        NodeOp::Rules { container, rules } => rules_script(profile, container, rules),
        NodeOp::WriteRules { rules } => format!("set -e\n{}", durable_write_lines(profile, rules)),
        NodeOp::Start { container } => start_script(runtime, container),
        NodeOp::Remove { container } => remove_script(runtime, container),
        NodeOp::EnsureImage { image } => ensure_image_script(runtime, image),
        NodeOp::PrivatePorts { chain, rules } => private_ports_script(profile, chain, rules),
        NodeOp::PrepareRead => super::prepare::read_script(),
        NodeOp::Prepare { config } => {
            super::prepare::write_script(&durable_programs(profile), config.as_ref())
        }
        NodeOp::Health {
            container,
            name,
            health,
        } => health::health_script(runtime, container, name, health),
        NodeOp::ProbeHealth { checks } => health::probe_script(runtime, checks),
        NodeOp::Volumes => super::volumes::list_script(runtime),
        NodeOp::RemoveVolumes { names } => super::volumes::remove_script(runtime, names),
        NodeOp::CheckLinks {
            topology,
            timeout_secs,
            probes,
        } => super::probe::script(runtime, topology, *timeout_secs, probes),
    }
}

/// Reads a node in one round trip: listening sockets, every container's published
/// ports, this topology's containers (inspect JSON), and for each one with a
/// namespace its sysctls and its nat and filter tables, each under its `Section`
/// header. A namespace that is the node's own (host networking) is named as such
/// and not read: its tables are the node's, not the container's.
fn observe_script(
    profile: &NodeProfile,
    topology: &str,
    images: &[String],
    subnets: bool,
) -> String {
    let rt = profile.runtime.binary();
    let [tcp, udp, ports, inspect, list, ns, hostns, sysctl, nft, nodefilter, subnets_header, durable, images_header, _volumes, end] =
        Section::ALL.map(Section::header);
    // The values in the order `Section::Sysctl` promises: that of SYSCTLS.
    let sysctls: Vec<String> = SYSCTLS
        .iter()
        .map(|(k, _)| format!("$(cat /proc/sys/{})", k.replace('.', "/")))
        .collect();
    let sysctl = format!("{sysctl} {}", sysctls.join(" "));
    // Both backends' state, whichever the node uses: a node switched from one to
    // the other still holds what the other wrote, until the switch is applied.
    // nft's JSON, not its text, whose layout changes between versions; a missing
    // table lists nothing (nft exits 1), a node without nft has no section.
    let save = format!(
        "iptables-save -t nat; iptables-save -t filter; if command -v nft >/dev/null 2>&1; then echo \"{nft}\"; nft -j list table {} {} 2>/dev/null; fi",
        crate::nft::FAMILY,
        crate::nft::TABLE
    );
    // The node's own filter table, owned lines only (private ports); and where a
    // container of this node comes from when it reaches a port of this node.
    // The node's own table is iptables whatever its containers' backend: the
    // runtimes here publish ports through iptables.
    let node_filter = format!(
        "iptables-save -t filter 2>/dev/null | grep -e '^:{pp}' -e '^-A {pp}' -e '^-A {fw} -j {pp}' || true",
        pp = crate::private_ports::PREFIX,
        fw = crate::private_ports::BUILTIN,
    );
    let networks = match profile.runtime {
        Runtime::Podman => {
            "podman network inspect podman --format '{{range .Subnets}}{{.Subnet}} {{end}}'"
        }
        Runtime::Docker => {
            "docker network inspect bridge --format '{{range .IPAM.Config}}{{.Subnet}} {{end}}'"
        }
    };
    // The runtime network's subnets, only when asked (a topology with private
    // ports): a second runtime run (a tenth of a CPU second), read beside the
    // rest into a file of its own and printed in its place below.
    let (nets_start, nets_end) = if subnets {
        (
            format!(
                r#"# The runtime's network (a second runtime run) is read beside the rest.
nets=$(mktemp "${{TMPDIR:-/tmp}}/geartopo-nets.XXXXXX" 2>/dev/null) || nets=
if [ -n "$nets" ]; then {networks} >"$nets" 2>/dev/null & netpid=$!; fi
"#
            ),
            format!(
                r#"if [ -n "$nets" ]; then
  wait "$netpid" || true
  echo "{subnets_header} $(cat "$nets")"
  rm -f "$nets"
else
  echo "{subnets_header} $({networks} 2>/dev/null)"
fi
"#,
                subnets_header = subnets_header,
            ),
        )
    } else {
        (String::new(), format!("echo \"{subnets_header}\"\n"))
    };
    let t = quote(topology);
    let ps_failed = format!("{{ echo \"geartopo: '{rt} ps' failed on this node\" >&2; exit 3; }}");
    // Each runtime run costs a tenth of a CPU second or more on a node, which is
    // what bounds reading many nodes at once: one run lists every container (and,
    // on docker, which has no JSON listing with pids, one inspect of ours).
    // `$ours` ends as one `ID PID` line per container of this topology.
    let listing = match profile.runtime {
        Runtime::Podman => format!(
            r#"echo "{list}"
ps=$({rt} ps -a --format json) || {ps_failed}
printf '%s\n' "$ps"
# `ID PID` of this topology's containers with a process, from that JSON as podman
# indents it (the parser checks that every such container's namespace was read).
ours=$(printf '%s\n' "$ps" | awk -v t={t} '{PODMAN_PIDS_AWK}')
"#
        ),
        Runtime::Docker => format!(
            r#"echo "{ports}"
ls=$({rt} ps -a --no-trunc --format '{{{{.Names}}}}|{{{{.Ports}}}}|{{{{.ID}}}}|{{{{.Label "geartopo.topology"}}}}') || {ps_failed}
[ -z "$ls" ] || printf '%s\n' "$ls"
ids=$(printf '%s\n' "$ls" | awk -F'|' -v t={t} '{DOCKER_IDS_AWK}')
echo "{inspect}"
ours=
# shellcheck disable=SC2086 # $ids is split on purpose: one inspect for every id (hex, no glob)
if [ -n "$ids" ]; then ours=$({rt} inspect -f '{{{{.Id}}}} {{{{.State.Pid}}}} {{{{json .}}}}' $ids) || exit 3; fi
[ -z "$ours" ] || printf '%s\n' "$ours"
"#
        ),
    };
    format!(
        r#"set -u
{nets_start}echo "{tcp}"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "{udp}"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
{listing}selfns=$(readlink /proc/self/ns/net)
[ -z "$ours" ] || printf '%s\n' "$ours" | while read -r id pid _; do
  echo "{ns} $id $pid"
  if [ "$pid" -gt 0 ] 2>/dev/null && [ -n "$selfns" ] && [ "$(readlink "/proc/$pid/ns/net")" = "$selfns" ]; then
    echo "{hostns}"
  elif [ "$pid" -gt 0 ] 2>/dev/null; then
    # shellcheck disable=SC2016 # expanded by the sh inside the namespace, not here
    nsenter -t "$pid" -n sh -c 'echo "{sysctl}"; {save}' 2>/dev/null
  fi
done
echo "{nodefilter}"
{node_filter}
{nets_end}{durable_read}{images_read}echo "{end}"
"#,
        durable_read = durable_read_lines(profile, &durable),
        nets_start = nets_start,
        nets_end = nets_end,
        images_read = images_read_lines(profile, images, &images_header),
    )
}

/// The `Images` section: which of `images` the runtime does not have, and then
/// the registries its auth files log in to. An image a container already uses
/// (in the listing read above) costs nothing; another costs one `image inspect`.
/// Of the auth files only the keys of JSON objects are printed (`"host": {`),
/// never a string value: no credential leaves the node.
fn images_read_lines(profile: &NodeProfile, images: &[String], header: &str) -> String {
    if images.is_empty() {
        return String::new();
    }
    let rt = profile.runtime.binary();
    let seen = match profile.runtime {
        Runtime::Podman => "$ps",
        Runtime::Docker => "$ours",
    };
    let list = images
        .iter()
        .map(|i| quote(i))
        .collect::<Vec<_>>()
        .join(" ");
    format!(
        r#"echo "{header}"
missing=
# shellcheck disable=SC2043 # one image is a list too
for img in {list}; do
  case "{seen}" in *"\"$img\""*) continue ;; esac
  {rt} image inspect --format '{{{{.Id}}}}' "$img" >/dev/null 2>&1 || {{ echo "missing $img"; missing=1; }}
done
if [ -n "$missing" ]; then
  for f in "${{REGISTRY_AUTH_FILE:-}}" /run/containers/0/auth.json "${{HOME:-/root}}/.config/containers/auth.json" "${{DOCKER_CONFIG:-${{HOME:-/root}}/.docker}}/config.json"; do
    if [ -z "$f" ] || [ ! -f "$f" ]; then continue; fi
    if grep -q '"creds' "$f"; then echo "auth *"; fi
    grep -o '"[^"]*"[[:space:]]*:[[:space:]]*{{' "$f" | sed 's/^"\([^"]*\)".*/auth \1/'
  done
fi
"#
    )
}

/// The `Durable` section: the node's hook program, hook file and rules files
/// (modes and hashes), and whether podman's boot service is enabled.
fn durable_read_lines(profile: &NodeProfile, header: &str) -> String {
    let systemd = match profile.runtime {
        Runtime::Podman => "if [ -d /run/systemd/system ]; then sysd=$(systemctl is-enabled podman-restart.service 2>/dev/null) || true; fi
",
        Runtime::Docker => "",
    };
    // Whether dockerd has the runtime wrapper registered (`node prepare`), and where.
    let docker = match profile.runtime {
        Runtime::Podman => String::new(),
        Runtime::Docker => format!(
            "echo \"dockerruntime $(docker info --format '{{{{with index .Runtimes \"{name}\"}}}}{{{{.Path}}}}{{{{end}}}}' 2>/dev/null)\"\n",
            name = durable::DOCKER_RUNTIME,
        ),
    };
    format!(
        r#"sd="{STATE_DIR}"; hd="{HOOKS_DIR}"; sysd=none
{systemd}case "$sd$hd" in *[!A-Za-z0-9_./-]*) sd=-; hd=- ;; esac
echo "{header} $sd $hd ${{sysd:-unknown}}"
# One stat and one sha256sum for all files: a node may hold a thousand.
set --
for f in "$sd/hook" "$sd/{rf}" "$hd/{HOOK_FILE}" "$sd"/rules/*; do [ -f "$f" ] && set -- "$@" "$f"; done
if [ "$#" -gt 0 ]; then stat -c 'mode %a %n' "$@"; sha256sum "$@" | sed 's/^/sha /'; fi
{docker}"#,
        rf = durable::RUNTIME_FILE,
    )
}

/// Validates the state and hooks directories and makes them, not world-writable.
const DURABLE_DIRS: &str = r#"sd="${GEARTOPO_STATE_DIR:-/var/lib/geartopo}"; hd="${GEARTOPO_HOOKS_DIR:-/etc/containers/oci/hooks.d}"
case "$sd" in /*) ok=1 ;; *) ok= ;; esac; case "$hd" in /*) ;; *) ok= ;; esac
case "$sd$hd" in *[!A-Za-z0-9_./-]*) ok= ;; esac
[ -n "$ok" ] || { echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_HOOKS_DIR must be absolute paths of A-Z a-z 0-9 _ . - /" >&2; exit 1; }
mkdir -p "$sd/rules"; chmod 755 "$sd"; chmod 700 "$sd/rules"
"#;

/// Puts the hook program and the hook file in place when they differ, then
/// writes the container's rules file (root only), each by rename.
fn durable_write_lines(profile: &NodeProfile, rules: &OwnedRules) -> String {
    let Some(file) = &rules.file else {
        return String::new();
    };
    let mut s = durable_programs(profile);
    s.push_str(&format!(
        "(umask 077; cat > \"$sd/rules/{file}.new\") <<'GEARTOPO_RULES'\n{content}GEARTOPO_RULES\n\
         chmod {rm} \"$sd/rules/{file}.new\"; mv -f \"$sd/rules/{file}.new\" \"$sd/rules/{file}\"\n",
        rm = durable::RULES_MODE,
        content = durable::rules_file(profile, rules),
    ));
    s
}

/// The directories, the hook program, and the runtime's part (docker: the
/// wrapper; podman: the hook file), each written only when it differs.
fn durable_programs(profile: &NodeProfile) -> String {
    let mut s = String::from(DURABLE_DIRS);
    s.push_str(&format!(
        "cat > \"$sd/hook.new\" <<'GEARTOPO_HOOK'\n{hook}GEARTOPO_HOOK\n\
         if cmp -s \"$sd/hook.new\" \"$sd/hook\"; then rm -f \"$sd/hook.new\"; else chmod {hm} \"$sd/hook.new\"; mv -f \"$sd/hook.new\" \"$sd/hook\"; fi\n",
        hook = durable::HOOK,
        hm = durable::HOOK_MODE,
    ));
    // Docker has no hooks directory: its runtime wrapper, beside the hook, adds
    // the hook to the container's bundle (once `node prepare` registered it).
    if profile.runtime == Runtime::Docker {
        s.push_str(&format!(
            "cat > \"$sd/{rf}.new\" <<'GEARTOPO_RUNTIME'\n{wrapper}GEARTOPO_RUNTIME\n\
             if cmp -s \"$sd/{rf}.new\" \"$sd/{rf}\"; then rm -f \"$sd/{rf}.new\"; else chmod {hm} \"$sd/{rf}.new\"; mv -f \"$sd/{rf}.new\" \"$sd/{rf}\"; fi\n",
            rf = durable::RUNTIME_FILE,
            wrapper = durable::RUNTIME,
            hm = durable::HOOK_MODE,
        ));
    }
    // The hook file is podman's: a docker node has no hooks directory.
    if profile.runtime == Runtime::Podman {
        s.push_str(&format!(
            "mkdir -p \"$hd\"\n\
             sed \"s|@STATE_DIR@|$sd|g\" > \"$hd/{HOOK_FILE}.new\" <<'GEARTOPO_HOOK'\n{hook_file}GEARTOPO_HOOK\n\
             if cmp -s \"$hd/{HOOK_FILE}.new\" \"$hd/{HOOK_FILE}\"; then rm -f \"$hd/{HOOK_FILE}.new\"; else chmod {fm} \"$hd/{HOOK_FILE}.new\"; mv -f \"$hd/{HOOK_FILE}.new\" \"$hd/{HOOK_FILE}\"; fi\n",
            hook_file = durable::hook_file("@STATE_DIR@"),
            fm = durable::HOOK_FILE_MODE,
        ));
    }
    s
}
/// Prints `ID PID` of each container in podman's `ps -a --format json` (indented
/// two spaces per level) whose label `geartopo.topology` is `t` and whose pid is
/// not 0. Exact string comparisons, no pattern made of the topology name.
const PODMAN_PIDS_AWK: &str = concat!(
    r#"$0 == "  {" { id = ""; pid = 0; ours = 0 } "#,
    r#"substr($0, 1, 10) == "    \"Id\": " { id = $2; gsub(/[",]/, "", id) } "#,
    r#"substr($0, 1, 11) == "    \"Pid\": " { pid = $2 + 0 } "#,
    r#"$0 == "      \"geartopo.topology\": \"" t "\"" || $0 == "      \"geartopo.topology\": \"" t "\"," { ours = 1 } "#,
    r#"($0 == "  }" || $0 == "  },") && ours && pid > 0 && id != "" { print id, pid }"#,
);

/// Prints the ID of each `NAMES|PORTS|ID|TOPOLOGY` line whose topology is `t`
/// (a label value may itself hold `|`: the rest of the line is compared).
const DOCKER_IDS_AWK: &str = concat!(
    r#"NF >= 4 { topo = $4; for (i = 5; i <= NF; i++) topo = topo "|" $i; "#,
    r#"if (topo == t) print $3 }"#,
);

/// Where the apply lock lives on a node (the lab gives each node its own).
const RUN_DIR: &str = r#"${GEARTOPO_RUN_DIR:-/run/geartopo}"#;

/// Takes the node's apply lock (a directory: `mkdir` is atomic), recording its
/// holder in two files: `holder` (one line, which unlock compares) and `info`
/// (`key=value` lines that tell whether the holder is still alive); or, when the
/// lock is held, reports it on stderr and ends with `LOCK_HELD`.
fn lock_script(holder: &LockHolder) -> String {
    let info: Vec<String> = holder
        .fields()
        .iter()
        .map(|(k, v)| quote(&format!("{k}={v}")))
        .collect();
    format!(
        r#"d="{RUN_DIR}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' {line} > "$d/apply.lock/holder"
  printf '%s\n' {info} > "$d/apply.lock/info"
else
{report}  exit {LOCK_HELD}
fi
"#,
        line = quote(&holder.to_string()),
        info = info.join(" "),
        report = lock_report(">&2"),
    )
}

/// Reports the lock in `$d` (`lock::HeldLock`), to `to` (a redirection).
fn lock_report(to: &str) -> String {
    let to = if to.is_empty() {
        String::new()
    } else {
        format!(" {to}")
    };
    format!(
        r#"  echo "{HELD_PREFIX}$(cat "$d/apply.lock/holder" 2>/dev/null) (lock $d/apply.lock)"{to}
  sed 's/^/{INFO_PREFIX}/' "$d/apply.lock/info"{to} 2>/dev/null || true
"#
    )
}

/// Releases the lock if this run holds it.
fn unlock_script(holder: &LockHolder) -> String {
    format!(
        r#"d="{RUN_DIR}"
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = {holder} ]; then rm -rf "$d/apply.lock"; fi
"#,
        holder = quote(&holder.to_string())
    )
}

/// The unlock that ends a step's round trip: only after the step succeeded
/// (`$?` is the status the script would end with here), saying `RELEASED` once
/// the lock is not this run's any more; the round trip ends with the step's
/// status either way.
fn release_script(holder: &LockHolder) -> String {
    format!(
        r#"rc=$?
if [ "$rc" -eq 0 ]; then
{unlock}[ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = {holder} ] || echo "{RELEASED}"
fi
exit "$rc"
"#,
        unlock = unlock_script(holder),
        holder = quote(&holder.to_string())
    )
}

/// Reports the lock on stdout when one is held, with the supervised scripts
/// still running on the node (`supervise::running_report`); nothing otherwise.
fn read_lock_script() -> String {
    format!(
        r#"d="{RUN_DIR}"
if [ -d "$d/apply.lock" ]; then
{report}{running}fi
"#,
        report = lock_report(""),
        running = supervise::running_report(),
    )
}

/// Removes the lock if it is still the one shown (its `holder` file reads `line`),
/// after ending the supervised scripts still running on the node (which the
/// operator was shown); a script that cannot be ended keeps the lock.
fn force_unlock_script(line: &str) -> String {
    format!(
        r#"d="{RUN_DIR}"
if [ ! -d "$d/apply.lock" ]; then echo "no lock is held (any more)" >&2; exit 0; fi
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = {line} ]; then
{end}  rm -rf "$d/apply.lock"
else
  echo "the lock changed since it was shown; nothing was removed" >&2; exit 1
fi
"#,
        line = quote(line),
        end = supervise::end_running(),
    )
}

/// Whether a secret goes through the create process's environment rather than
/// the env file (which holds one line per variable).
fn multi_line(value: &str) -> bool {
    value.contains('\n')
}

fn create_command(runtime: Runtime, spec: &CreateSpec, env_file: bool) -> String {
    // `NAME=value runtime create ... --env NAME`: the assignment is the shell's
    // own, so the value is in that one process's environment (readable by root
    // only, in /proc/PID/environ), never in its arguments.
    let through_env: Vec<&(String, String)> = spec
        .secret_env
        .iter()
        .filter(|(_, v)| multi_line(v))
        .collect();
    let mut args: Vec<String> = vec![
        runtime.binary().into(),
        "create".into(),
        "--name".into(),
        spec.runtime_name.clone(),
    ];
    for (k, v) in &spec.labels {
        args.push("--label".into());
        args.push(format!("{k}={v}"));
    }
    args.push("--restart".into());
    args.push(spec.restart.clone());
    // On a prepared docker node: the wrapper that puts the hook in its bundle.
    if let (Runtime::Docker, Some(rt)) = (runtime, &spec.oci_runtime) {
        args.push("--runtime".into());
        args.push(rt.clone());
    }
    for m in &spec.mounts {
        args.push("--volume".into());
        args.push(m.clone());
    }
    args.extend(spec.options.iter().cloned());
    if let Some(file) = spec.durable.as_ref().and_then(|r| r.file.as_ref()) {
        args.push("--label".into());
        args.push(format!("{}={file}", durable::LABEL));
        // Docker has no annotations; its runtime wrapper adds the hook instead.
        if runtime == Runtime::Podman {
            args.push("--annotation".into());
            args.push(format!("{}={file}", durable::ANNOTATION));
        }
    }
    for (k, v) in SYSCTLS {
        args.push("--sysctl".into());
        args.push(format!("{k}={v}"));
    }
    for (proto, port, host_port) in &spec.publish {
        args.push("--publish".into());
        args.push(format!("{host_port}:{port}/{proto}"));
    }
    for (k, v) in &spec.env {
        args.push("--env".into());
        args.push(format!("{k}={v}"));
    }
    for (k, _) in &through_env {
        args.push("--env".into());
        args.push(k.clone());
    }
    let mut line: String = through_env
        .iter()
        .map(|(k, v)| format!("{k}={} ", quote(v)))
        .collect();
    line.push_str(&join(&args));
    if env_file {
        line.push_str(" --env-file \"$envfile\"");
    }
    line.push(' ');
    line.push_str(&join(std::iter::once(&spec.image).chain(&spec.command)));
    line
}

/// Creates a container and prepares its namespace without starting its process
/// (podman `init`; docker has no init, so there the process starts in
/// `rules_script` instead, see README). Secret values go through a file only root
/// can read, written by the shell's own printf, so that they never stand on a
/// command line that `ps` shows on the node.
fn create_script(profile: &NodeProfile, spec: &CreateSpec) -> String {
    let runtime = profile.runtime;
    let mut s = String::from("set -e\n");
    // The rules file before the container exists: its first start (podman
    // `init`) runs the hook, which reads it.
    if let Some(rules) = &spec.durable {
        s.push_str(&durable_write_lines(profile, rules));
    }
    for (name, labels) in &spec.volumes {
        s.push_str(&super::volumes::ensure_lines(runtime, name, labels));
    }
    let in_file = spec.secret_env.iter().any(|(_, v)| !multi_line(v));
    if in_file {
        // Removed however the script ends: normally (EXIT), or by a signal, after
        // which the exit ends the script with the signal's status.
        s.push_str(concat!(
            "umask 077\nenvfile=$(mktemp)\n",
            "trap 'rm -f \"$envfile\"' EXIT\n",
            "trap 'rm -f \"$envfile\"; exit 129' HUP\n",
            "trap 'rm -f \"$envfile\"; exit 130' INT\n",
            "trap 'rm -f \"$envfile\"; exit 143' TERM\n",
        ));
        for (k, v) in spec.secret_env.iter().filter(|(_, v)| !multi_line(v)) {
            s.push_str(&format!(
                "printf '%s\\n' {} >> \"$envfile\"\n",
                quote(&format!("{k}={v}"))
            ));
        }
    }
    s.push_str(&create_command(runtime, spec, in_file));
    s.push_str(" >/dev/null\n");
    s.push_str(&init_lines(runtime, &spec.runtime_name));
    s
}

fn init_lines(runtime: Runtime, name: &str) -> String {
    match runtime {
        // `podman init` refuses a container that is initialized already (a
        // previous apply stopped after init): only init what needs it.
        Runtime::Podman => {
            let n = quote(name);
            format!(
                "case \"$(podman inspect -f '{{{{.State.Status}}}}' {n})\" in initialized|running) ;; *) podman init {n} >/dev/null ;; esac\n"
            )
        }
        Runtime::Docker => String::new(),
    }
}

/// Prepares the namespace of an existing, stopped container (podman `init`).
fn init_script(runtime: Runtime, name: &str) -> String {
    format!("set -e\n{}", init_lines(runtime, name))
}

/// Puts the owned chains in place in the container's namespace with one
/// `iptables-restore --noflush`, makes each jump present exactly once, and sets
/// the sysctls. On docker, starts the container first (it has no `init`). Before
/// anything is written, refuses a namespace that is the one this script runs in
/// (a container with host networking): its rules and sysctls would be the node's.
fn rules_script(profile: &NodeProfile, name: &str, rules: &OwnedRules) -> String {
    let rt = profile.runtime.binary();
    let n = quote(name);
    let mut s = String::from("set -e\n");
    if profile.runtime == Runtime::Docker {
        s.push_str(&format!("[ \"$(docker inspect -f '{{{{.State.Running}}}}' {n})\" = true ] || docker start {n} >/dev/null\n"));
    }
    s.push_str(&format!(
        "pid=$({rt} inspect -f '{{{{.State.Pid}}}}' {n})\n[ \"$pid\" -gt 0 ] || {{ echo {n}\" has no network namespace (state: $({rt} inspect -f '{{{{.State.Status}}}}' {n}))\" >&2; exit 1; }}\n"
    ));
    s.push_str(&format!(
        "ns=$(readlink \"/proc/$pid/ns/net\") || ns=\nif [ -z \"$ns\" ] || [ \"$ns\" = \"$(readlink /proc/self/ns/net)\" ]; then echo {n}\": its network namespace is this node's own (host networking?) or unreadable ($ns): refusing to change rules or sysctls there\" >&2; exit 1; fi\n"
    ));
    // The rules file in the same step as the restore: the next start gets these.
    s.push_str(&durable_write_lines(profile, rules));
    // The new backend's rules first, then the other's removed (a switch): every
    // moment in between has at least one complete set of the same links.
    match (&rules.file, rules.firewall) {
        // With a rules file just written, the hook puts it in place as it does
        // at every start: the sysctls, and one iptables-save (the jumps'
        // counts) and one restore of the payload with the jump fixes. The
        // payload is sent once (in the file), not twice, and the restore is
        // not followed by a save of the whole table (bench/floor.sh).
        (Some(file), Firewall::Iptables) => s.push_str(&format!(
            "printf '{{\"pid\":%s,\"annotations\":{{\"{annotation}\":\"%s\"}}}}\\n' \"$pid\" {f} | \"$sd/hook\" \"$sd\"\n",
            annotation = durable::ANNOTATION,
            f = quote(file),
        )),
        (_, firewall) => {
            for (k, v) in SYSCTLS {
                s.push_str(&format!("nsenter -t \"$pid\" -n sysctl -q -w {k}={v}\n"));
            }
            match firewall {
                Firewall::Iptables => s.push_str(&iptables_lines(rules)),
                Firewall::Nftables => s.push_str(&nft_lines(rules)),
            }
        }
    }
    if rules.clear_other {
        match rules.firewall {
            Firewall::Iptables => s.push_str(&nft_clear_lines()),
            Firewall::Nftables => s.push_str(&iptables_clear_lines()),
        }
    }
    s
}

/// One `nft -f` transaction that declares, deletes and recreates geartopo's
/// table (`OwnedRules::payload`): nothing outside that table is named.
fn nft_lines(rules: &OwnedRules) -> String {
    let mut s = String::from(
        "command -v nft >/dev/null 2>&1 || { echo \"nft is not installed on this node (its firewall is nftables)\" >&2; exit 1; }\n",
    );
    s.push_str("nsenter -t \"$pid\" -n nft -f - <<'GEARTOPO_NFT'\n");
    s.push_str(&rules.payload());
    s.push_str("GEARTOPO_NFT\n");
    s
}

/// Removes geartopo's nft table, if there is one (the node moved to iptables).
fn nft_clear_lines() -> String {
    format!(
        "nsenter -t \"$pid\" -n nft -f - <<'GEARTOPO_NFT'\n{}GEARTOPO_NFT\n",
        crate::nft::DELETE_DOCUMENT
    )
}

/// Removes geartopo's owned iptables chains and every jump into them, if there
/// are any (the node moved to nftables); nothing else in any table.
fn iptables_clear_lines() -> String {
    let chains: Vec<String> = CHAINS
        .iter()
        .map(|(t, b, o)| format!("{t}:{b}:{o}"))
        .collect();
    format!(
        r#"for triple in {}; do
  t=${{triple%%:*}}; rest=${{triple#*:}}; b=${{rest%%:*}}; o=${{rest#*:}}
  while nsenter -t "$pid" -n iptables -w -t "$t" -D "$b" -j "$o" 2>/dev/null; do :; done
  if nsenter -t "$pid" -n iptables -w -t "$t" -S "$o" >/dev/null 2>&1; then
    nsenter -t "$pid" -n iptables -w -t "$t" -F "$o"
    nsenter -t "$pid" -n iptables -w -t "$t" -X "$o"
  fi
done
"#,
        chains.join(" ")
    )
}

/// One restore of the owned chains (filter and nat), then the jumps into them
/// checked: appended in nat (after whatever else is there, as before), inserted
/// first in filter, so that no foreign ACCEPT in INPUT comes before the guard.
fn iptables_lines(rules: &OwnedRules) -> String {
    let mut s =
        String::from("nsenter -t \"$pid\" -n iptables-restore --noflush <<'GEARTOPO_RESTORE'\n");
    s.push_str(&rules.payload());
    s.push_str("GEARTOPO_RESTORE\n");
    let chains: Vec<String> = CHAINS
        .iter()
        .map(|(t, b, o)| format!("{t}:{b}:{o}"))
        .collect();
    let saves: String = TABLES
        .iter()
        .map(|t| format!("saved_{t}=$(nsenter -t \"$pid\" -n iptables-save -t {t})\n"))
        .collect();
    // One iptables-save per table for the checks: with a thousand rules in the
    // table, each save is most of the step's time (bench rules). Fixing one
    // chain's jumps does not change another's count, so the saved copies stay true.
    s.push_str(&saves);
    s.push_str(&format!(
        r#"for triple in {}; do
  t=${{triple%%:*}}; rest=${{triple#*:}}; b=${{rest%%:*}}; o=${{rest#*:}}
  if [ "$t" = filter ]; then saved=$saved_filter; add="-I $b 1"; else saved=$saved_nat; add="-A $b"; fi
  n=$(printf '%s\n' "$saved" | grep -c -x -e "-A $b -j $o" || true)
  # shellcheck disable=SC2086 # $add is two or three words on purpose
  if [ "$n" -eq 0 ]; then nsenter -t "$pid" -n iptables -w -t "$t" $add -j "$o"; fi
  while [ "$n" -gt 1 ]; do nsenter -t "$pid" -n iptables -w -t "$t" -D "$b" -j "$o"; n=$((n-1)); done
done
"#,
        chains.join(" ")
    ));
    s
}

/// The node's own private-ports chain (`private_ports`): one restore of that
/// chain alone, then FORWARD's jump into it made present once, in first place
/// (before the runtime's own chains, DOCKER-USER included, which accept the
/// DNAT'd flows). No rules: the jumps and the chain go. The chain name comes
/// from `private_ports::chain_name` (`GEARTOPO-PP-` and hex digits), and is
/// quoted all the same.
fn private_ports_script(profile: &NodeProfile, chain: &str, rules: &[String]) -> String {
    let c = quote(chain);
    let fw = crate::private_ports::BUILTIN;
    // The node's own table is iptables whatever its containers' backend (the
    // runtimes here publish ports through iptables), so `profile` changes nothing.
    let _ = profile;
    if rules.is_empty() {
        format!(
            r#"set -e
while iptables -w -D {fw} -j {c} 2>/dev/null; do :; done
if iptables -w -n -L {c} >/dev/null 2>&1; then iptables -w -F {c}; iptables -w -X {c}; fi
"#
        )
    } else {
        {
            let mut s = String::from("set -e\niptables-restore --noflush <<'GEARTOPO_RESTORE'\n");
            s.push_str(&crate::private_ports::render_restore(chain, rules));
            s.push_str("GEARTOPO_RESTORE\n");
            s.push_str(&format!(
                r#"n=$(iptables-save -t filter | grep -c -x -e "-A {fw} -j "{c} || true)
if [ "$n" -ne 1 ] || [ "$(iptables -w -S {fw} 1 2>/dev/null)" != "-A {fw} -j "{c} ]; then
  while iptables -w -D {fw} -j {c} 2>/dev/null; do :; done
  iptables -w -I {fw} 1 -j {c}
fi
"#
            ));
            s
        }
    }
}

/// Starts a prepared container.
fn start_script(runtime: Runtime, name: &str) -> String {
    let rt = runtime.binary();
    let n = quote(name);
    format!("set -e\n[ \"$({rt} inspect -f '{{{{.State.Running}}}}' {n})\" = true ] || {rt} start {n} >/dev/null\n")
}

/// Makes sure an image is on the node, pulling it if not; fails naming it.
fn ensure_image_script(runtime: Runtime, image: &str) -> String {
    let rt = runtime.binary();
    let i = quote(image);
    let exists = match runtime {
        Runtime::Podman => format!("podman image exists {i}"),
        Runtime::Docker => format!("docker image inspect {i} >/dev/null 2>&1"),
    };
    format!(
        "if ! {exists}; then\n  {rt} pull -q {i} >/dev/null || {{ echo image {i} \"is not on this node and could not be pulled\" >&2; exit 1; }}\nfi\n"
    )
}

/// Removes a container (and with it its namespace and owned chains), then its
/// rules file (named by its label), and the hook once no rules file is left on
/// the node (no container of any topology needs it any more).
fn remove_script(runtime: Runtime, id: &str) -> String {
    let rt = runtime.binary();
    let i = quote(id);
    format!(
        r#"set -e
f=$({rt} inspect -f '{{{{index .Config.Labels "{label}"}}}}' {i} 2>/dev/null) || f=
{rt} rm -f {i} >/dev/null
case $f in
  '' | .* | *[!A-Za-z0-9_.-]*) ;;
  *)
    sd="{STATE_DIR}"; hd="{HOOKS_DIR}"
    rm -f "$sd/rules/$f"
    if [ -z "$(ls -A "$sd/rules" 2>/dev/null)" ]; then rm -f "$hd/{HOOK_FILE}" "$sd/hook" "$sd/{rf}"; fi
    ;;
esac
"#,
        label = durable::LABEL,
        rf = durable::RUNTIME_FILE,
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::path::PathBuf;

    use super::*;
    use crate::rules::{render_rules, ResolvedLink};
    use crate::topology::model::Protocol;

    fn holder() -> LockHolder {
        LockHolder {
            topology: "todo".into(),
            user: "root".into(),
            host: "host1".into(),
            pid: 42,
            start_ticks: 4242,
            boot_id: "0a1b2c3d-0000-4000-8000-000000000000".into(),
            since: 0,
        }
    }

    fn spec(secret: bool) -> CreateSpec {
        CreateSpec {
            runtime_name: "todo-app1".into(),
            labels: vec![
                ("geartopo.topology".into(), "todo".into()),
                ("geartopo.container".into(), "app1".into()),
                ("geartopo.spec".into(), "command=1,env=2,image=3".into()),
            ],
            publish: vec![("tcp", 6379, 50000), ("udp", 53, 50001)],
            env: vec![("X".into(), "$(touch /tmp/x); echo".into())],
            secret_env: if secret {
                vec![
                    ("API_KEY".into(), "it's secret".into()),
                    (
                        "TLS_KEY".into(),
                        "-----BEGIN secret-----\nAAAA\n-----END-----".into(),
                    ),
                ]
            } else {
                vec![]
            },
            image: "localhost/geartopo-busybox:latest".into(),
            command: vec!["sleep".into(), "1000000".into()],
            restart: "always".into(),
            volumes: vec![],
            mounts: vec![],
            options: vec![],
            durable: Some(owned_rules()),
            oci_runtime: None,
        }
    }

    /// A create with a named volume, a read-only bind mount and every option.
    fn spec_with_volumes() -> CreateSpec {
        let options = crate::topology::model::ContainerOptions {
            memory: Some("512m".into()),
            cpus: Some("1.5".into()),
            user: Some("999:999".into()),
            cap_add: vec!["NET_ADMIN".into()],
            cap_drop: vec!["ALL".into()],
            stop_signal: Some("SIGINT".into()),
            stop_timeout: Some(30),
            read_only: true,
            labels: [("team".to_string(), "db's".to_string())].into(),
        };
        CreateSpec {
            volumes: vec![(
                "todo-app1.data".into(),
                vec![
                    ("geartopo.topology".into(), "todo".into()),
                    ("geartopo.container".into(), "app1".into()),
                ],
            )],
            mounts: vec![
                "todo-app1.data:/var/lib/data".into(),
                "/srv/conf:/conf:ro".into(),
            ],
            options: options.create_args(),
            ..spec(false)
        }
    }

    fn owned_rules() -> OwnedRules {
        let link = ResolvedLink {
            listen_ip: Ipv4Addr::new(127, 0, 0, 1),
            listen_port: 6379,
            protocol: Protocol::Tcp,
            dest_ip: Ipv4Addr::new(198, 18, 0, 4),
            dest_port: 50000,
            describe: "redisdb:6379".into(),
        };
        OwnedRules {
            topology: "todo".into(),
            container: "app1".into(),
            rules: render_rules("todo", "app1", &[link]),
            file: Some("todo-app1".into()),
            firewall: Firewall::Iptables,
            clear_other: false,
        }
    }

    /// The same link for an nftables node; `clear_other`: switched from iptables.
    fn nft_rules(clear_other: bool) -> OwnedRules {
        let link = ResolvedLink {
            listen_ip: Ipv4Addr::new(127, 0, 0, 1),
            listen_port: 6379,
            protocol: Protocol::Tcp,
            dest_ip: Ipv4Addr::new(198, 18, 0, 4),
            dest_port: 50000,
            describe: "redisdb:6379".into(),
        };
        OwnedRules {
            topology: "todo".into(),
            container: "app1".into(),
            rules: crate::nft::table_lines(&crate::nft::desired("todo", "app1", &[link])),
            firewall: Firewall::Nftables,
            clear_other,
            file: Some("todo-app1".into()),
        }
    }

    /// Every round trip geartopo makes, from fixed inputs, by golden file name.
    fn fixtures() -> Vec<(&'static str, Vec<NodeOp>)> {
        let observe = NodeOp::Observe {
            topology: "todo".into(),
            images: vec!["localhost/geartopo-busybox:latest".into()],
            subnets: true,
        };
        let lock = NodeOp::Lock { holder: holder() };
        // An observed id: steps on an existing container name it by id.
        let id = "0123456789abcdef".to_string();
        vec![
            ("observe", vec![observe.clone()]),
            (
                // A topology without private ports: no network read.
                "observe-no-subnets",
                vec![NodeOp::Observe {
                    topology: "todo".into(),
                    images: vec![],
                    subnets: false,
                }],
            ),
            ("lock", vec![lock.clone()]),
            ("lock-observe", vec![lock.clone(), observe.clone()]),
            (
                "lock-digest",
                vec![
                    lock,
                    NodeOp::Digest {
                        topology: "todo".into(),
                        subnets: true,
                        scope: digest::DigestScope {
                            listen: vec!["tcp:C350".into()],
                            publish: vec!["tcp:50000".into()],
                            names: vec!["todo-app1".into()],
                            full: vec!["0123456789abcdef".into()],
                            files: vec!["todo-app1".into()],
                        },
                    },
                ],
            ),
            ("unlock", vec![NodeOp::Unlock { holder: holder() }]),
            (
                "start-release",
                vec![
                    NodeOp::Start {
                        container: id.clone(),
                    },
                    NodeOp::Release { holder: holder() },
                ],
            ),
            ("read-lock", vec![NodeOp::ReadLock]),
            (
                "force-unlock",
                vec![NodeOp::ForceUnlock {
                    line: holder().to_string(),
                }],
            ),
            ("create", vec![NodeOp::Create(spec(false))]),
            ("create-secret", vec![NodeOp::Create(spec(true))]),
            ("create-volumes", vec![NodeOp::Create(spec_with_volumes())]),
            ("volumes-observe", vec![NodeOp::Volumes, observe.clone()]),
            (
                "check-links",
                vec![NodeOp::CheckLinks {
                    topology: "todo".into(),
                    timeout_secs: 3,
                    probes: vec![
                        crate::node::probe::Probe {
                            runtime_name: "todo-app1".into(),
                            ip: "127.0.0.1".into(),
                            port: 6379,
                        },
                        crate::node::probe::Probe {
                            runtime_name: "todo-app1".into(),
                            ip: "192.168.1.2".into(),
                            port: 2379,
                        },
                        crate::node::probe::Probe {
                            runtime_name: "todo-web".into(),
                            ip: "127.0.0.1".into(),
                            port: 80,
                        },
                    ],
                }],
            ),
            (
                "remove-volumes",
                vec![NodeOp::RemoveVolumes {
                    names: vec!["todo-app1.data".into(), "todo-db-2.data".into()],
                }],
            ),
            (
                "create-wrapped",
                vec![NodeOp::Create(CreateSpec {
                    oci_runtime: Some(durable::DOCKER_RUNTIME.into()),
                    ..spec(false)
                })],
            ),
            (
                "init",
                vec![NodeOp::Init {
                    container: id.clone(),
                }],
            ),
            (
                "rules",
                vec![NodeOp::Rules {
                    container: id.clone(),
                    rules: owned_rules(),
                }],
            ),
            (
                "write-rules",
                vec![NodeOp::WriteRules {
                    rules: owned_rules(),
                }],
            ),
            (
                "rules-nft",
                vec![NodeOp::Rules {
                    container: id.clone(),
                    rules: nft_rules(false),
                }],
            ),
            (
                "rules-switch-to-nft",
                vec![NodeOp::Rules {
                    container: id.clone(),
                    rules: nft_rules(true),
                }],
            ),
            (
                "rules-switch-to-iptables",
                vec![NodeOp::Rules {
                    container: id.clone(),
                    rules: OwnedRules {
                        clear_other: true,
                        ..owned_rules()
                    },
                }],
            ),
            (
                "start",
                vec![NodeOp::Start {
                    container: id.clone(),
                }],
            ),
            (
                "health-tcp",
                vec![NodeOp::Health {
                    container: id.clone(),
                    name: "todo-redisdb".into(),
                    health: crate::topology::model::Health {
                        probe: crate::topology::model::Probe::Tcp(6379),
                        interval_ms: 500,
                        timeout_ms: 2000,
                        retries: 30,
                    },
                }],
            ),
            (
                "health-command",
                vec![NodeOp::Health {
                    container: id.clone(),
                    name: "todo-redisdb".into(),
                    health: crate::topology::model::Health {
                        probe: crate::topology::model::Probe::Command(vec![
                            "redis-cli".into(),
                            "ping".into(),
                        ]),
                        interval_ms: 1000,
                        timeout_ms: 1500,
                        retries: 10,
                    },
                }],
            ),
            (
                "probe-health",
                vec![NodeOp::ProbeHealth {
                    checks: vec![
                        (
                            "todo-redisdb".into(),
                            crate::topology::model::Health {
                                probe: crate::topology::model::Probe::Tcp(6379),
                                interval_ms: 1000,
                                timeout_ms: 2000,
                                retries: 30,
                            },
                        ),
                        (
                            "todo-app1".into(),
                            crate::topology::model::Health {
                                probe: crate::topology::model::Probe::Command(vec![
                                    "/srv/check".into(),
                                    "--quick".into(),
                                ]),
                                interval_ms: 1000,
                                timeout_ms: 1000,
                                retries: 3,
                            },
                        ),
                    ],
                }],
            ),
            ("remove", vec![NodeOp::Remove { container: id }]),
            (
                "image",
                vec![NodeOp::EnsureImage {
                    image: "localhost/geartopo-busybox:latest".into(),
                }],
            ),
            (
                "private-ports",
                vec![NodeOp::PrivatePorts {
                    chain: "GEARTOPO-PP-0123456789abcdef".into(),
                    rules: crate::private_ports::render_rules(
                        "todo",
                        "GEARTOPO-PP-0123456789abcdef",
                        &[crate::private_ports::PrivatePort {
                            container: "redisdb".into(),
                            protocol: Protocol::Tcp,
                            port: 6379,
                            host_port: 50000,
                            sources: vec![crate::private_ports::Source::Node(Ipv4Addr::new(
                                198, 18, 0, 1,
                            ))],
                        }],
                    ),
                }],
            ),
            ("prepare-read", vec![NodeOp::PrepareRead]),
            (
                "prepare",
                vec![NodeOp::Prepare {
                    config: Some((
                        "{\n  \"runtimes\": { \"geartopo\": { \"path\": \"/var/lib/geartopo/runtime\" } }\n}\n".into(),
                        "absent".into(),
                    )),
                }],
            ),
            (
                "private-ports-remove",
                vec![NodeOp::PrivatePorts {
                    chain: "GEARTOPO-PP-0123456789abcdef".into(),
                    rules: vec![],
                }],
            ),
        ]
    }

    fn golden_dir(runtime: Runtime) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/golden/scripts")
            .join(runtime.binary())
    }

    /// Golden files of every script for every runtime; `GEARTOPO_BLESS=1` rewrites
    /// them. CI runs shellcheck on them (.ci/run).
    #[test]
    fn every_script_matches_its_golden_file() {
        let bless = std::env::var_os("GEARTOPO_BLESS").is_some_and(|v| v == "1");
        let mut stale = Vec::new();
        for runtime in [Runtime::Podman, Runtime::Docker] {
            let dir = golden_dir(runtime);
            let fixtures = fixtures();
            for (name, ops) in &fixtures {
                let path = dir.join(format!("{name}.sh"));
                let text = render(&NodeProfile::for_runtime(runtime), ops);
                if bless {
                    std::fs::create_dir_all(&dir).unwrap();
                    std::fs::write(&path, &text).unwrap();
                    continue;
                }
                let golden = std::fs::read_to_string(&path).unwrap_or_else(|e| {
                    panic!("{}: {e}; run with GEARTOPO_BLESS=1", path.display())
                });
                if golden != text {
                    stale.push(path.display().to_string());
                }
            }
            // A golden file no fixture writes would be checked by shellcheck only.
            for entry in std::fs::read_dir(&dir).unwrap() {
                let file = entry.unwrap().file_name().into_string().unwrap();
                let known = fixtures.iter().any(|(n, _)| format!("{n}.sh") == file);
                assert!(known, "{}/{file} is no script's golden file", dir.display());
            }
        }
        assert!(
            stale.is_empty(),
            "scripts differ from their golden files (GEARTOPO_BLESS=1 rewrites them): {stale:?}"
        );
    }

    #[test]
    fn a_round_trip_of_several_operations_is_their_scripts_in_order() {
        let profile = NodeProfile::for_runtime(Runtime::Podman);
        let ops = &fixtures()[2].1;
        assert_eq!(
            render(&profile, ops),
            render(&profile, &ops[..1]) + &render(&profile, &ops[1..])
        );
    }

    /// What `ps` on the node shows must not carry a secret value: it is only in
    /// the shell's own printf (a builtin, no process) into a root-only file.
    #[test]
    fn a_secret_is_on_no_command_line() {
        for runtime in [Runtime::Podman, Runtime::Docker] {
            let text = render(
                &NodeProfile::for_runtime(runtime),
                &[NodeOp::Create(spec(true))],
            );
            let with_secret: Vec<&str> = text.lines().filter(|l| l.contains("secret")).collect();
            let create = format!("{} create", runtime.binary());
            assert_eq!(
                with_secret,
                [
                    "printf '%s\\n' 'API_KEY=it'\\''s secret' >> \"$envfile\"",
                    "TLS_KEY='-----BEGIN secret-----",
                ],
                "{text}"
            );
            // The multi-line one is an assignment before the create command, which
            // names it without a value: in its environment, not its arguments.
            let line = text.lines().find(|l| l.contains(&create)).unwrap();
            assert!(
                line.starts_with("-----END-----' podman create")
                    || line.starts_with("-----END-----' docker create"),
                "{line}"
            );
            assert!(
                line.contains(" --env TLS_KEY --env-file \"$envfile\" "),
                "{line}"
            );
        }
    }
}

#[cfg(test)]
mod image_tests {
    use super::*;

    /// The `Images` part run by a real `sh` on a node without the image (no
    /// runtime on PATH): the image is reported missing, and of an auth file only
    /// the registry host names come out, never a credential.
    #[test]
    fn images_section_reports_missing_images_and_registry_names_only() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join(".config/containers");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("auth.json"),
            "{\n  \"auths\": {\n    \"registry.example.com\": {\n      \"auth\": \"c2VjcmV0OnB3\"\n    },\"quay.io/team\": {\"auth\": \"dG9rZW4=\", \"identitytoken\": \"idtok\"}\n  }\n}\n",
        )
        .unwrap();
        let profile = NodeProfile::for_runtime(Runtime::Podman);
        let images = [
            "registry.example.com/app:1".to_string(),
            "localhost/in-use:1".to_string(),
        ];
        let script = format!(
            "ps='[{{\"Image\": \"localhost/in-use:1\"}}]'\n{}",
            images_read_lines(&profile, &images, "@@geartopo images")
        );
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env_clear()
            .env("HOME", dir.path())
            .env("PATH", "/usr/bin:/bin")
            .env("DOCKER_CONFIG", dir.path().join("none"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let state =
            crate::observe::parse::parse_node("n1", "t", &format!("{text}@@geartopo end\n"))
                .unwrap();
        assert_eq!(
            state.images.missing.iter().collect::<Vec<_>>(),
            ["registry.example.com/app:1"],
            "{text}"
        );
        assert!(
            state.images.logins.contains("registry.example.com"),
            "{text}"
        );
        assert!(state.images.logins.contains("quay.io/team"), "{text}");
        for secret in ["c2VjcmV0OnB3", "dG9rZW4=", "idtok"] {
            assert!(!text.contains(secret), "a credential left the node: {text}");
        }
    }
}

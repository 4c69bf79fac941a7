//! The shell scripts geartopo runs on a node, one per round trip: observe, lock,
//! create, rules, start, remove. Built from validated names with every argument
//! quoted; sent on stdin to `sh -s`, so the command line itself is always the same.
//! Pure text, no I/O. podman and docker differ only here.

use crate::rules::CHAINS;
use crate::topology::model::Runtime;
use crate::transport::shell::{join, quote};

/// The command line every script is run with: the script comes on stdin.
pub const SHELL: &str = "sh -s";

/// Separator lines in the observe output.
pub const MARK: &str = "@@geartopo";

/// Reads a node in one round trip: listening sockets, every container's published
/// ports, this topology's containers (inspect JSON), and for each one with a
/// namespace its two sysctls and its nat table. Changes nothing.
pub fn observe_script(runtime: Runtime, topology: &str) -> String {
    let rt = runtime.binary();
    let label = quote(&format!("label=geartopo.topology={topology}"));
    format!(
        r#"set -u
echo "{MARK} tcp"
cat /proc/net/tcp /proc/net/tcp6 2>/dev/null
echo "{MARK} udp"
cat /proc/net/udp /proc/net/udp6 2>/dev/null
echo "{MARK} ports"
{rt} ps -a --format '{{{{.Names}}}}|{{{{.Ports}}}}' || {{ echo "geartopo: '{rt} ps' failed on this node" >&2; exit 3; }}
ids=$({rt} ps -a -q --no-trunc --filter {label}) || exit 3
echo "{MARK} inspect"
if [ -n "$ids" ]; then {rt} inspect $ids || exit 3; else echo '[]'; fi
# One inspect for every pid, one nsenter per namespace: each podman run costs a
# tenth of a CPU second or more, which is what bounds reading many nodes at once.
pids=
if [ -n "$ids" ]; then pids=$({rt} inspect -f '{{{{.Id}}}} {{{{.State.Pid}}}}' $ids) || exit 3; fi
[ -z "$pids" ] || printf '%s\n' "$pids" | while read -r id pid; do
  echo "{MARK} ns $id $pid"
  if [ "$pid" -gt 0 ] 2>/dev/null; then
    nsenter -t "$pid" -n sh -c 'echo "{MARK} sysctl $(cat /proc/sys/net/ipv4/ip_forward) $(cat /proc/sys/net/ipv4/conf/all/route_localnet)"; iptables-save -t nat' 2>/dev/null
  fi
done
echo "{MARK} end"
"#
    )
}

/// Where the apply lock lives on a node (the lab gives each node its own).
const RUN_DIR: &str = r#"${GEARTOPO_RUN_DIR:-/run/geartopo}"#;

/// Exit status of the lock script when another apply holds the lock.
pub const LOCK_HELD: i32 = 75;

/// Takes the node's apply lock, or fails naming the holder.
pub fn lock_script(holder: &str) -> String {
    format!(
        r#"d="{RUN_DIR}"; mkdir -p "$d" || exit 1
if mkdir "$d/apply.lock" 2>/dev/null; then
  printf '%s\n' {holder} > "$d/apply.lock/holder"
else
  echo "locked by: $(cat "$d/apply.lock/holder" 2>/dev/null || echo unknown) (lock $d/apply.lock)" >&2
  exit {LOCK_HELD}
fi
"#,
        holder = quote(holder)
    )
}

/// Releases the lock if this run holds it.
pub fn unlock_script(holder: &str) -> String {
    format!(
        r#"d="{RUN_DIR}"
if [ "$(cat "$d/apply.lock/holder" 2>/dev/null)" = {holder} ]; then rm -rf "$d/apply.lock"; fi
"#,
        holder = quote(holder)
    )
}

/// What `create` needs; every string comes from the validated model.
#[derive(Debug, Clone)]
pub struct CreateSpec {
    pub runtime_name: String,
    pub labels: Vec<(String, String)>,
    /// (protocol, container port, host port)
    pub publish: Vec<(&'static str, u16, u16)>,
    pub env: Vec<(String, String)>,
    /// Secret values without a line break: passed in a root-only file.
    pub secret_env: Vec<(String, String)>,
    pub image: String,
    pub command: Vec<String>,
}

/// The sysctls every container gets: forwarding, and DNAT to and from 127.0.0.0/8.
pub const SYSCTLS: [(&str, &str); 2] = [
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.route_localnet", "1"),
];

fn create_command(runtime: Runtime, spec: &CreateSpec, env_file: bool) -> String {
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
    let mut line = join(&args);
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
pub fn create_script(runtime: Runtime, spec: &CreateSpec) -> String {
    let mut s = String::from("set -e\n");
    if !spec.secret_env.is_empty() {
        s.push_str("umask 077\nenvfile=$(mktemp)\ntrap 'rm -f \"$envfile\"' EXIT\n");
        for (k, v) in &spec.secret_env {
            s.push_str(&format!(
                "printf '%s\\n' {} >> \"$envfile\"\n",
                quote(&format!("{k}={v}"))
            ));
        }
    }
    s.push_str(&create_command(runtime, spec, !spec.secret_env.is_empty()));
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
pub fn init_script(runtime: Runtime, name: &str) -> String {
    format!("set -e\n{}", init_lines(runtime, name))
}

/// Puts the owned chains in place in the container's namespace with one
/// `iptables-restore --noflush`, makes each jump present exactly once, and sets
/// the sysctls. On docker, starts the container first (it has no `init`).
pub fn rules_script(runtime: Runtime, name: &str, restore: &str) -> String {
    let rt = runtime.binary();
    let n = quote(name);
    let mut s = String::from("set -e\n");
    if runtime == Runtime::Docker {
        s.push_str(&format!("[ \"$(docker inspect -f '{{{{.State.Running}}}}' {n})\" = true ] || docker start {n} >/dev/null\n"));
    }
    s.push_str(&format!(
        "pid=$({rt} inspect -f '{{{{.State.Pid}}}}' {n})\n[ \"$pid\" -gt 0 ] || {{ echo {n}\" has no network namespace (state: $({rt} inspect -f '{{{{.State.Status}}}}' {n}))\" >&2; exit 1; }}\n"
    ));
    for (k, v) in SYSCTLS {
        s.push_str(&format!("nsenter -t \"$pid\" -n sysctl -q -w {k}={v}\n"));
    }
    s.push_str("nsenter -t \"$pid\" -n iptables-restore --noflush <<'GEARTOPO_RESTORE'\n");
    s.push_str(restore);
    s.push_str("GEARTOPO_RESTORE\n");
    let chains: Vec<String> = CHAINS.iter().map(|(b, o)| format!("{b}:{o}")).collect();
    // One iptables-save for the three checks: with a thousand rules in the table,
    // each save is most of the step's time (bench rules). Fixing one chain's jumps
    // does not change another's count, so the one saved copy stays true.
    s.push_str(&format!(
        r#"saved=$(nsenter -t "$pid" -n iptables-save -t nat)
for pair in {}; do
  b=${{pair%%:*}}; o=${{pair#*:}}
  n=$(printf '%s\n' "$saved" | grep -c -x -e "-A $b -j $o" || true)
  if [ "$n" -eq 0 ]; then nsenter -t "$pid" -n iptables -w -t nat -A "$b" -j "$o"; fi
  while [ "$n" -gt 1 ]; do nsenter -t "$pid" -n iptables -w -t nat -D "$b" -j "$o"; n=$((n-1)); done
done
"#,
        chains.join(" ")
    ));
    s
}

/// Starts a prepared container.
pub fn start_script(runtime: Runtime, name: &str) -> String {
    let rt = runtime.binary();
    let n = quote(name);
    format!("set -e\n[ \"$({rt} inspect -f '{{{{.State.Running}}}}' {n})\" = true ] || {rt} start {n} >/dev/null\n")
}

/// Removes a container (and with it its namespace and owned chains).
pub fn remove_script(runtime: Runtime, id: &str) -> String {
    format!(
        "set -e\n{} rm -f {} >/dev/null\n",
        runtime.binary(),
        quote(id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> CreateSpec {
        CreateSpec {
            runtime_name: "todo-app1".into(),
            labels: vec![("geartopo.topology".into(), "todo".into())],
            publish: vec![("tcp", 6379, 50000)],
            env: vec![("X".into(), "$(touch /tmp/x); echo".into())],
            secret_env: vec![],
            image: "localhost/geartopo-busybox:latest".into(),
            command: vec!["sleep".into(), "1000000".into()],
        }
    }

    #[test]
    fn podman_create_quotes_env_and_inits() {
        let s = create_script(Runtime::Podman, &spec());
        assert_eq!(
            s,
            "set -e\npodman create --name todo-app1 --label geartopo.topology=todo --sysctl net.ipv4.ip_forward=1 --sysctl net.ipv4.conf.all.route_localnet=1 --publish 50000:6379/tcp --env 'X=$(touch /tmp/x); echo' localhost/geartopo-busybox:latest sleep 1000000 >/dev/null\ncase \"$(podman inspect -f '{{.State.Status}}' todo-app1)\" in initialized|running) ;; *) podman init todo-app1 >/dev/null ;; esac\n"
        );
    }

    #[test]
    fn secrets_go_through_a_root_only_file_not_the_command_line() {
        let mut spec = spec();
        spec.secret_env = vec![("API_KEY".into(), "it's secret".into())];
        let s = create_script(Runtime::Podman, &spec);
        let create = s.lines().find(|l| l.starts_with("podman create")).unwrap();
        assert!(!create.contains("secret"), "{create}");
        assert!(
            create.contains("--env-file \"$envfile\" localhost/geartopo-busybox:latest"),
            "{create}"
        );
        assert!(s.contains("umask 077\n"));
        assert!(
            s.contains("printf '%s\\n' 'API_KEY=it'\\''s secret' >> \"$envfile\"\n"),
            "{s}"
        );
    }

    #[test]
    fn docker_create_has_no_init_and_starts_before_rules() {
        let s = create_script(Runtime::Docker, &spec());
        assert!(s.starts_with("set -e\ndocker create --name todo-app1"));
        assert!(!s.contains("init"));
        let r = rules_script(Runtime::Docker, "todo-app1", "*nat\nCOMMIT\n");
        let start = r.find("docker start").unwrap();
        let restore = r.find("iptables-restore").unwrap();
        assert!(start < restore);
    }

    #[test]
    fn observe_filters_by_the_topology_label() {
        let s = observe_script(Runtime::Docker, "todo");
        assert!(s.contains("docker ps -a -q --no-trunc --filter label=geartopo.topology=todo"));
        assert!(s.contains("'{{.Names}}|{{.Ports}}'"));
    }
}

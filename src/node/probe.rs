//! The script of `geartopo check`: for each container of the topology on the
//! node, a TCP connect from inside its network namespace (`nsenter -n`) to the
//! listen address of each of its links, answered by whatever the link's rules
//! lead to. The connect is bash's `/dev/tcp` (else `nc -z`), bounded by
//! `timeout`. A container is found by runtime name and probed only if it carries
//! this topology's label. Nothing on the node is changed. Pure text, no I/O.

use crate::topology::model::Runtime;
use crate::transport::shell::quote;

/// What starts each answer line: `@@geartopo-check INDEX RESULT...`.
pub const MARK: &str = "@@geartopo-check";

/// One connect to make: in `runtime_name`'s namespace, to `ip:port` (TCP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub runtime_name: String,
    pub ip: String,
    pub port: u16,
}

/// Probes `probes` (the containers' probes run side by side, a container's own
/// one after the other); answers one line per probe: `MARK INDEX ok|refused|
/// timeout|unreachable|not-running|no-probe|error WORDS`.
pub fn script(runtime: Runtime, topology: &str, timeout_secs: u32, probes: &[Probe]) -> String {
    let rt = runtime.binary();
    let mut s = format!(
        r#"set -u
t={t}
# The pid of container $1 when it is this topology's and runs, else empty.
pid_of() {{
  info=$({rt} inspect -f '{{{{.State.Pid}}}} {{{{index .Config.Labels "geartopo.topology"}}}}' "$1" 2>/dev/null) || info=
  case $info in
    *" $t") p=${{info%% *}}; [ "$p" -gt 0 ] 2>/dev/null && echo "$p" ;;
  esac
}}
# One TCP connect from the namespace of pid $1 to $2:$3; prints the result.
probe() {{
  if [ -z "$1" ]; then echo not-running; return; fi
  if command -v bash >/dev/null 2>&1; then
    # shellcheck disable=SC2016 # expanded by the bash inside the namespace
    out=$(timeout {to} nsenter -t "$1" -n bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>&1)
    rc=$?
  elif command -v nc >/dev/null 2>&1; then
    out=$(timeout {to} nsenter -t "$1" -n nc -z -w {to} "$2" "$3" 2>&1)
    rc=$?
  else
    echo no-probe; return
  fi
  if [ "$rc" = 0 ]; then echo ok
  elif [ "$rc" = 124 ]; then echo timeout
  else
    case $out in
      *refused*) echo refused ;;
      *"No route"* | *nreachable*) echo unreachable ;;
      *) echo "error $(printf '%s' "$out" | tr -c 'A-Za-z0-9.:_-' ' ' | cut -c1-160)" ;;
    esac
  fi
}}
"#,
        t = quote(topology),
        to = timeout_secs.max(1),
    );
    // Grouped by container, in order of first appearance.
    let mut groups: Vec<(&str, Vec<(usize, &Probe)>)> = Vec::new();
    for (i, p) in probes.iter().enumerate() {
        match groups.iter_mut().find(|(n, _)| *n == p.runtime_name) {
            Some((_, v)) => v.push((i, p)),
            None => groups.push((&p.runtime_name, vec![(i, p)])),
        }
    }
    for (name, ps) in groups {
        s.push_str(&format!("(\n  pid=$(pid_of {})\n", quote(name)));
        for (i, p) in ps {
            s.push_str(&format!(
                "  r=$(probe \"$pid\" {} {}); echo \"{MARK} {i} $r\"\n",
                quote(&p.ip),
                p.port
            ));
        }
        s.push_str(") &\n");
    }
    s.push_str("wait\n");
    s
}

//! The node scripts of named volumes: list them (`Section::Volumes`), make one
//! before the container that mounts it, remove them (`destroy --volumes`). A
//! volume is only ever made with this topology's labels and only removed by name
//! after observe found it carrying them; one of the same name with another owner
//! fails the step that would use it, and is never touched. Pure text, no I/O.

use super::section::Section;
use crate::topology::model::Runtime;
use crate::transport::shell::quote;

/// The label a volume's owning topology is recorded in (as on containers).
pub const TOPOLOGY_LABEL: &str = "geartopo.topology";
/// The label of the owning topology's id, when the topology has one.
pub const ID_LABEL: &str = "geartopo.id";

/// Lists every volume of the node as `NAME TOPOLOGY ID` (one runtime run).
pub fn list_script(runtime: Runtime) -> String {
    let rt = runtime.binary();
    let format = match runtime {
        Runtime::Podman => format!(
            "{{{{.Name}}}} {{{{index .Labels \"{TOPOLOGY_LABEL}\"}}}} {{{{index .Labels \"{ID_LABEL}\"}}}}"
        ),
        Runtime::Docker => format!(
            "{{{{.Name}}}} {{{{.Label \"{TOPOLOGY_LABEL}\"}}}} {{{{.Label \"{ID_LABEL}\"}}}}"
        ),
    };
    format!(
        "echo \"{header}\"\n{rt} volume ls --format {format} || {{ echo \"geartopo: '{rt} volume ls' failed on this node\" >&2; exit 3; }}\n",
        header = Section::Volumes.header(),
        format = quote(&format),
    )
}

/// Makes volume `name` with `labels` unless it exists; fails (before the
/// container is made) when one exists that carries another topology's label.
pub fn ensure_lines(runtime: Runtime, name: &str, labels: &[(String, String)]) -> String {
    let rt = runtime.binary();
    let n = quote(name);
    let exists = match runtime {
        Runtime::Podman => format!("podman volume exists {n}"),
        Runtime::Docker => format!("docker volume inspect {n} >/dev/null 2>&1"),
    };
    let topology = labels
        .iter()
        .find(|(k, _)| k == TOPOLOGY_LABEL)
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    let label_args: String = labels
        .iter()
        .map(|(k, v)| format!(" --label {}", quote(&format!("{k}={v}"))))
        .collect();
    format!(
        r#"if {exists}; then
  [ "$({rt} volume inspect -f '{{{{index .Labels "{TOPOLOGY_LABEL}"}}}}' {n})" = {t} ] || {{ echo volume {n} "exists on this node and is not topology" {t}"'s: geartopo leaves it alone" >&2; exit 1; }}
else
  {rt} volume create{label_args} {n} >/dev/null
fi
"#,
        t = quote(topology),
    )
}

/// Removes volumes `names` (found owned by observe, their containers gone).
pub fn remove_script(runtime: Runtime, names: &[String]) -> String {
    let rt = runtime.binary();
    let mut s = String::from("set -e\n");
    for n in names {
        s.push_str(&format!("{rt} volume rm {} >/dev/null\n", quote(n)));
    }
    s
}

//! A node given on the command line (`destroy --node NAME=ADDR`) rather than in
//! the file: one removed from the file that still runs the topology's containers.
//! It is checked and filled in exactly as a `[nodes.NAME]` entry with only an
//! address would be (the file's `[defaults]` for user, port, key, known hosts and
//! runtime), by checking the file with that entry added. No I/O here.

use super::model::Node;

/// The node `name` at `address`, as the file at `source` would declare it.
pub fn extra_node(file: &str, source: &[u8], name: &str, address: &str) -> Result<Node, String> {
    let text = std::str::from_utf8(source).map_err(|_| format!("{file} is not UTF-8 text"))?;
    let mut doc: toml_edit::DocumentMut = text
        .parse()
        .map_err(|e| format!("{file} is not valid TOML: {e}"))?;
    let nodes = doc
        .entry("nodes")
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
    let Some(nodes) = nodes.as_table_like_mut() else {
        return Err(format!("{file}: `nodes` is not a table"));
    };
    if nodes.contains_key(name) {
        return Err(format!(
            "node {name} is in {file}: plain `destroy` (or `--target`) reaches its containers; --node is for a node no longer in the file"
        ));
    }
    let mut entry = toml_edit::Table::new();
    entry.insert("address", toml_edit::value(address));
    nodes.insert(name, toml_edit::Item::Table(entry));
    let with = doc.to_string();
    match super::check::check(file, with.as_bytes()) {
        Ok((t, _)) => t
            .nodes
            .get(name)
            .cloned()
            .ok_or_else(|| format!("--node {name}={address}: not a usable node")),
        Err(invalid) => Err(format!(
            "--node {name}={address}: {}",
            invalid
                .problems
                .iter()
                .map(|p| match p.labels.first() {
                    Some(l) => format!("{} ({})", p.message, l.text),
                    None => p.message.clone(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::extra_node;
    use crate::topology::model::{NodeAddress, Runtime};

    const FILE: &str = "name = \"t\"\n[defaults]\nuser = \"ops\"\nport = 2222\nruntime = \"docker\"\n[nodes.node1]\naddress = \"198.18.0.1\"\n[containers.a]\nnode = \"node1\"\nimage = \"i\"\n";

    #[test]
    fn an_extra_node_takes_the_files_defaults() {
        let n = extra_node("t.toml", FILE.as_bytes(), "node2", "198.18.0.2").unwrap();
        assert_eq!(n.name, "node2");
        assert_eq!(n.address, NodeAddress::Remote("198.18.0.2".into()));
        assert_eq!(
            (n.user.as_str(), n.port, n.runtime),
            ("ops", 2222, Runtime::Docker)
        );
        // Inline `nodes = { ... }` works the same.
        let inline = "name = \"t\"\nnodes = { node1 = { address = \"198.18.0.1\" } }\n";
        assert!(extra_node("t.toml", inline.as_bytes(), "node2", "198.18.0.2").is_ok());
    }

    #[test]
    fn an_extra_node_is_checked_like_one_in_the_file() {
        let bad_address =
            extra_node("t.toml", FILE.as_bytes(), "node2", "198.18.0.2; reboot").unwrap_err();
        assert!(
            bad_address.starts_with("--node node2=198.18.0.2; reboot: invalid"),
            "{bad_address}"
        );
        assert!(extra_node("t.toml", FILE.as_bytes(), "-x", "198.18.0.2").is_err());
        let in_file = extra_node("t.toml", FILE.as_bytes(), "node1", "198.18.0.1").unwrap_err();
        assert!(in_file.contains("node node1 is in t.toml"), "{in_file}");
    }
}

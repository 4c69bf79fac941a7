//! The observe output's one definition: it is a series of sections, each opened by
//! a header line `@@geartopo NAME ARGS...`. The observe script writes the headers
//! with `Section::header`, `observe` reads them with `Section::parse_header`; the
//! names live only here. No I/O.

/// What starts every header line.
pub const MARK: &str = "@@geartopo";

/// One section of the observe output, in the order the script writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// `/proc/net/tcp` and `tcp6`.
    Tcp,
    /// `/proc/net/udp` and `udp6`.
    Udp,
    /// `NAME|PORTS` of every container on the node (`ps --format`), optionally
    /// followed by `|ID|TOPOLOGY` (docker's one listing).
    Ports,
    /// The runtime's inspect of this topology's containers: a JSON array, or
    /// one line `ID PID JSON` per container (docker's `inspect -f`).
    Inspect,
    /// podman's `ps -a --format json` of every container on the node: names,
    /// published ports, and this topology's containers in full (one podman run).
    List,
    /// Args `ID PID`: a container's namespace; its `Sysctl` section follows if
    /// the namespace could be entered.
    Namespace,
    /// The namespace of the `Namespace` before it is the node's own (host
    /// networking): nothing was read in it, and geartopo must not write there.
    HostNetwork,
    /// Args: the values of `node::SYSCTLS`, in that order; the body is the
    /// namespace's nat and filter tables as `iptables-save` prints them.
    Sysctl,
    /// Follows `Sysctl` when the node has `nft`: the body is `nft -j list table
    /// ip geartopo` in the namespace (JSON), empty when there is no such table.
    Nft,
    /// The owned lines (`GEARTOPO-PP-*` chains, FORWARD's jumps into them) of
    /// the node's own filter table, as `iptables-save` prints them.
    NodeFilter,
    /// Args: the runtime's default container network(s), `A.B.C.D/N`.
    Subnets,
    /// Args `STATE_DIR HOOKS_DIR SYSTEMD`: what the node keeps for durable links
    /// (docs/durable.md). SYSTEMD is `none` without systemd, else what
    /// `systemctl is-enabled podman-restart.service` said. The body has lines
    /// `mode OCTAL PATH` and `sha HASH  PATH` for the hook program, the hook file
    /// and every rules file.
    Durable,
    /// Lines `missing IMAGE` for the file's images the runtime does not have;
    /// when there is one, `auth KEY` for each key of the runtime's auth files
    /// (registry host names; never a value, so never a credential).
    Images,
    /// Lines `NAME TOPOLOGY ID`: every volume on the node, with the values of
    /// its `geartopo.topology` and `geartopo.id` labels (empty when absent).
    /// Written by `NodeOp::Volumes`, before the rest.
    Volumes,
    /// The script got to its end.
    End,
}

impl Section {
    pub const ALL: [Section; 15] = [
        Section::Tcp,
        Section::Udp,
        Section::Ports,
        Section::Inspect,
        Section::List,
        Section::Namespace,
        Section::HostNetwork,
        Section::Sysctl,
        Section::Nft,
        Section::NodeFilter,
        Section::Subnets,
        Section::Durable,
        Section::Images,
        Section::Volumes,
        Section::End,
    ];

    /// The name in the header line.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Tcp => "tcp",
            Section::Udp => "udp",
            Section::Ports => "ports",
            Section::Inspect => "inspect",
            Section::List => "list",
            Section::Namespace => "ns",
            Section::HostNetwork => "hostns",
            Section::Sysctl => "sysctl",
            Section::Nft => "nft",
            Section::NodeFilter => "nodefilter",
            Section::Subnets => "subnets",
            Section::Durable => "durable",
            Section::Images => "images",
            Section::Volumes => "volumes",
            Section::End => "end",
        }
    }

    /// The header line without its args (`@@geartopo tcp`), no newline.
    pub fn header(self) -> String {
        format!("{MARK} {}", self.as_str())
    }

    /// `Some` for a header line: its section (`Err` with the line's head if no
    /// section has that name) and its args.
    pub fn parse_header(line: &str) -> Option<Result<(Section, Vec<&str>), String>> {
        let head = line.strip_prefix(MARK)?;
        let mut words = head.split_whitespace();
        let name = words.next().unwrap_or("");
        Some(
            Section::ALL
                .into_iter()
                .find(|s| s.as_str() == name)
                .map(|s| (s, words.collect()))
                .ok_or_else(|| head.trim().to_string()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_header_reads_back_as_its_section() {
        for s in Section::ALL {
            let line = format!("{} a b", s.header());
            assert_eq!(
                Section::parse_header(&line),
                Some(Ok((s, vec!["a", "b"]))),
                "{line}"
            );
        }
        assert_eq!(Section::parse_header("tcp"), None);
        assert_eq!(
            Section::parse_header("@@geartopo tcpx 1"),
            Some(Err("tcpx 1".into()))
        );
    }
}

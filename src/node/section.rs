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
    /// `NAME|PORTS` of every container on the node (`ps --format`).
    Ports,
    /// The runtime's inspect JSON of this topology's containers.
    Inspect,
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
    /// The script got to its end.
    End,
}

impl Section {
    pub const ALL: [Section; 9] = [
        Section::Tcp,
        Section::Udp,
        Section::Ports,
        Section::Inspect,
        Section::Namespace,
        Section::HostNetwork,
        Section::Sysctl,
        Section::Nft,
        Section::End,
    ];

    /// The name in the header line.
    pub fn as_str(self) -> &'static str {
        match self {
            Section::Tcp => "tcp",
            Section::Udp => "udp",
            Section::Ports => "ports",
            Section::Inspect => "inspect",
            Section::Namespace => "ns",
            Section::HostNetwork => "hostns",
            Section::Sysctl => "sysctl",
            Section::Nft => "nft",
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

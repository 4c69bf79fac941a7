//! The topology's `id`: what it must look like. Pure: making a fresh one reads
//! randomness and lives with the command that prints it (`cli::validate`).

/// The id in its one stored form (lowercase), or `None` when `s` is neither 16 to
/// 64 hex digits nor a UUID (8-4-4-4-12 hex digits). The id reaches a label on
/// the nodes, so nothing else may pass.
pub fn topology_id(s: &str) -> Option<String> {
    let hex = |part: &str| part.bytes().all(|b| b.is_ascii_hexdigit());
    let plain = (16..=64).contains(&s.len()) && hex(s);
    let parts: Vec<&str> = s.split('-').collect();
    let uuid = parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p));
    (plain || uuid).then(|| s.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::topology_id;

    #[test]
    fn ids_are_long_hex_or_uuids_and_nothing_else() {
        assert_eq!(
            topology_id("0123456789ABCDEF").as_deref(),
            Some("0123456789abcdef")
        );
        assert!(topology_id("6f1c2a4e-0b7d-4c55-9a0e-3d2f1b8c9e70").is_some());
        for bad in [
            "",
            "0123456789abcde",
            "0123456789abcdeg",
            "6f1c2a4e-0b7d-4c55-9a0e-3d2f1b8c9e7",
            "6f1c2a4e0b7d-4c55-9a0e-3d2f-1b8c9e70",
            "0123456789abcdef; rm -rf /",
            &"a".repeat(65),
        ] {
            assert_eq!(topology_id(bad), None, "{bad:?}");
        }
    }
}

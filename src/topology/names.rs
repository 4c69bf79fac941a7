//! Names and text in a topology file: whether a node, container, view or host name
//! is well formed, the environment name of a view, and typo suggestions. Pure
//! functions of strings; no spans, no diagnostics here (callers build those), so
//! that both `raw` and `check` can use them without depending on each other.

use std::net::Ipv4Addr;

/// Longest node, container or view name.
pub(crate) const MAX_NAME: usize = 63;

/// Limits that keep the work on any file bounded (docs/format.md, "Limits"):
/// far above real use, low enough that a hostile file is refused in time.
/// Concrete containers after replica expansion, in the whole topology.
pub(crate) const MAX_CONTAINERS: usize = 10_000;
/// Members of one view after replica expansion.
pub(crate) const MAX_VIEW_MEMBERS: usize = 256;
/// Links of all containers after replica and view expansion.
pub(crate) const MAX_LINKS: usize = 100_000;
/// "Did you mean" searches per file: each scans every name, so a file of
/// thousands of misspelt names would cost names x typos; past this many, no hints.
pub(crate) const MAX_SUGGESTIONS: usize = 100;

/// `GEARTOPO_VIEW_<NAME>`'s NAME: upper case, every other character `_`.
pub(crate) fn view_env_name(view: &str) -> String {
    view.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// Why `name` is not a valid node, container or view name.
pub(crate) fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a name cannot be empty")
    } else if name.len() > MAX_NAME {
        Some("longer than 63 characters")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
    {
        Some("only A-Z a-z 0-9 _ . - are allowed")
    } else if name.starts_with('-') || name.starts_with('.') {
        Some("must not start with - or .")
    } else {
        None
    }
}

/// Why `host` is neither an IPv4 address nor a DNS name.
pub(crate) fn host_problem(host: &str) -> Option<&'static str> {
    if host.parse::<Ipv4Addr>().is_ok() {
        return None;
    }
    if host.is_empty() {
        return Some("empty host");
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Some("not a valid IPv4 address");
    }
    if host.len() > 253 {
        return Some("a DNS name is at most 253 characters");
    }
    let labels_ok = host.trim_end_matches('.').split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if !labels_ok {
        return Some("not an IPv4 address or a DNS name");
    }
    None
}

/// The candidate closest to `word`, if close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Long inputs (junk files) are never typos of short names; don't spend time on them.
    if a.len().abs_diff(b.len()) > 3 || a.len() > 128 || b.len() > 128 {
        return usize::MAX;
    }
    // Optimal string alignment: a swap of two neighbours (`nmae`) counts as one edit.
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

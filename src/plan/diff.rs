//! Comparing one resolved container with what was observed of it: the action
//! (keep, create, replace, update rules, start) and the drift to report. Pure; it
//! decides nothing about other containers.

use crate::state::{ObservedContainer, OwnedChains, RunState};
use crate::topology::model::Firewall;

use super::{Action, Change, Desired, Drift};

/// The reason a replace carries when the operator asked for it (`--replace`).
pub(crate) const REPLACE_REQUESTED: &str = "replace requested";

/// The attribute containers made before durable links do not record.
const ADDED_LATER: &str = "restart";

/// Attributes recorded only when set (`volumes`, `options`): one the container
/// records and the file no longer sets forces a replace as a changed one does.
const RECORDED_WHEN_SET: [&str; 2] = ["volumes", "options"];

fn make_change(
    d: &Desired,
    observed: Option<&ObservedContainer>,
    action: Action,
    start: bool,
    reasons: Vec<String>,
) -> Change {
    let rules_file = match &action {
        Action::Create | Action::Replace { .. } => Some(d.runtime_name.clone()),
        _ => observed.and_then(|oc| oc.rules_file.clone()),
    };
    Change {
        container: d.container.clone(),
        node: d.node.clone(),
        runtime_name: d.runtime_name.clone(),
        action,
        start,
        rules_before: observed.and_then(live_rules),
        rules_after: d.rules.clone(),
        reasons,
        observed_id: observed.map(|oc| oc.id.clone()),
        observed_image: observed.map(|oc| oc.image.clone()),
        desired: Some(d.clone()),
        rules_file,
    }
}

/// What a plan shows as a container's live owned rules: its iptables owned
/// rules, then the lines of its nft table (each backend's own syntax; on a node
/// that uses one backend, the other adds nothing); `None` without a namespace.
pub(super) fn live_rules(oc: &ObservedContainer) -> Option<Vec<String>> {
    let chains = oc.chains.as_ref()?;
    let mut lines = chains.rules.clone();
    if let Some(table) = &oc.nft {
        lines.extend(crate::nft::table_lines(table));
    }
    Some(lines)
}

/// `--replace`: turns what `diff_one` planned for `d` into a replace, whatever it
/// was (nothing, an update in place, a replace forced by an attribute). A
/// container that does not exist yet is created, as planned.
pub(super) fn replace_requested(
    d: &Desired,
    observed: Option<&ObservedContainer>,
    planned: Option<Change>,
) -> Option<Change> {
    if observed.is_none() {
        return planned;
    }
    let forced_by = match planned.map(|c| c.action) {
        Some(Action::Replace { forced_by }) => forced_by,
        _ => Vec::new(),
    };
    Some(make_change(
        d,
        observed,
        Action::Replace { forced_by },
        true,
        vec![REPLACE_REQUESTED.to_string()],
    ))
}

/// Compares one desired container with what was observed of it.
pub(super) fn diff_one(
    d: &Desired,
    observed: Option<&ObservedContainer>,
    drift: &mut Vec<Drift>,
) -> Option<Change> {
    // Built only when there is a change: a no-op plan of a large topology would
    // otherwise copy every container's rules and resolved form to throw them away.
    let change = |action, start, reasons| make_change(d, observed, action, start, reasons);
    let Some(oc) = observed else {
        return Some(change(Action::Create, true, Vec::new()));
    };

    let forced_by: Vec<String> = d
        .spec
        .iter()
        // An attribute a container of an older geartopo does not record
        // (`restart`) never forces a replace by itself: a new version of geartopo
        // does not replace what runs (see `durable`).
        .filter(|(k, v)| match oc.spec.get(*k) {
            None => k.as_str() != ADDED_LATER,
            Some(o) => o != *v,
        })
        .map(|(k, _)| k.clone())
        .chain(
            RECORDED_WHEN_SET
                .iter()
                .filter(|k| oc.spec.contains_key(**k) && !d.spec.contains_key(**k))
                .map(|k| k.to_string()),
        )
        .collect();
    if !forced_by.is_empty() {
        return Some(change(Action::Replace { forced_by }, true, Vec::new()));
    }

    let mut note = |what: String| {
        drift.push(Drift {
            container: d.container.clone(),
            node: d.node.clone(),
            what,
        })
    };
    let start = oc.state != RunState::Running;
    let mut reasons: Vec<String> = Vec::new();
    if let RunState::Stopped(s) = &oc.state {
        note(format!(
            "{} is {s}: it was stopped outside geartopo",
            d.runtime_name
        ));
        reasons.push("start".into());
    } else if oc.state == RunState::Created {
        reasons.push("start".into());
    }
    match &oc.chains {
        None => reasons.push("rules".into()),
        Some(chains) => {
            match d.firewall {
                Firewall::Iptables if oc.nft.is_some() && chains.is_empty() => {
                    // Switched from nftables: nothing in iptables yet is no drift.
                    reasons.push("firewall".into());
                    reasons.push("rules".into());
                }
                Firewall::Iptables => {
                    if oc.nft.is_some() {
                        reasons.push("firewall".into());
                    }
                    iptables_reasons(d, oc, chains, &mut note, &mut reasons);
                }
                Firewall::Nftables => nft_reasons(d, oc, chains, &mut note, &mut reasons),
            }
            let wrong: Vec<String> = crate::node::SYSCTLS
                .iter()
                .filter(|(k, v)| oc.sysctls.get(*k).map(String::as_str) != Some(*v))
                .map(|(k, v)| {
                    format!(
                        "{k} is {} (want {v})",
                        oc.sysctls
                            .get(*k)
                            .map(String::as_str)
                            .unwrap_or("unreadable")
                    )
                })
                .collect();
            if !wrong.is_empty() {
                note(wrong.join("; "));
                reasons.push("sysctls".into());
            }
        }
    }
    reasons.dedup();
    if reasons.is_empty() {
        None
    } else {
        Some(change(Action::Update, start, reasons))
    }
}

/// The iptables backend: the owned chains against the desired rules.
fn iptables_reasons(
    d: &Desired,
    oc: &ObservedContainer,
    chains: &OwnedChains,
    note: &mut impl FnMut(String),
    reasons: &mut Vec<String>,
) {
    if chains.before_guard() {
        // Applied by a geartopo without the route_localnet guard: not
        // drift, the rules step adds it (the plan shows it in the diff).
        reasons.push("rules".into());
    } else if !chains.intact() {
        let mut what = Vec::new();
        if chains.marker.is_none() && chains.rules.is_empty() {
            what.push("owned chains are missing".to_string());
        } else if chains.marker.as_deref() != Some(crate::rules::rules_hash(&chains.rules).as_str())
        {
            what.push("rules in the owned chains were changed".to_string());
        }
        // The guard has its own words: without it, services bound to
        // 127.0.0.1 in the container are reachable from its bridge.
        let guard = crate::rules::GUARD_CHAIN;
        let is_guard = |r: &&String| r.split_whitespace().nth(1) == Some(guard);
        if chains.marker.is_some()
            && chains
                .rules
                .iter()
                .filter(is_guard)
                .ne(d.rules.iter().filter(is_guard))
        {
            what.push(format!(
                "the route_localnet guard in {guard} is missing or changed"
            ));
        }
        for (_, builtin, owned) in crate::rules::CHAINS {
            let n = chains.jumps.get(builtin).copied().unwrap_or(0);
            if n != 1 {
                what.push(format!("{builtin} jumps to {owned} {n} times"));
            }
        }
        if !what.is_empty() && oc.state == RunState::Running {
            note(what.join("; "));
        }
        reasons.push("rules".into());
    } else if chains.rules != d.rules {
        reasons.push("rules".into());
    }
}

/// The nftables backend: geartopo's table, normalized, against the desired
/// table's lines; iptables chains left by a former iptables backend make it a
/// switch, whose rules step removes them.
fn nft_reasons(
    d: &Desired,
    oc: &ObservedContainer,
    chains: &OwnedChains,
    note: &mut impl FnMut(String),
    reasons: &mut Vec<String>,
) {
    let switching = !chains.is_empty();
    if switching {
        reasons.push("firewall".into());
    }
    let running = oc.state == RunState::Running;
    match &oc.nft {
        None => {
            if running && !switching {
                note(format!(
                    "table {} {} is missing",
                    crate::nft::FAMILY,
                    crate::nft::TABLE
                ));
            }
            reasons.push("rules".into());
        }
        Some(table) => {
            if !table.intact() {
                if running {
                    note(format!(
                        "rules in table {} {} were changed",
                        crate::nft::FAMILY,
                        crate::nft::TABLE
                    ));
                }
                reasons.push("rules".into());
            } else if crate::nft::table_lines(table) != d.rules {
                reasons.push("rules".into());
            }
        }
    }
    if switching {
        reasons.push("rules".into());
    }
}

//! The safety checks of a saved plan (`plan -o PLAN`, then `apply PLAN`): the
//! nodes must be as they were when the plan was made, and this geartopo must plan
//! exactly what was saved. Either failure means nothing is changed. Pure: the
//! caller reads the nodes and computes the plan; nothing here does I/O.

use crate::plan::Plan;
use crate::state::ObservedState;

/// Why a saved plan cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SavedPlanError {
    #[error("stale plan: the live state of the nodes has changed since {file} was made (fingerprint {then} then, {now} now). Nothing was changed; run `geartopo plan` again.")]
    Stale {
        file: String,
        then: String,
        now: String,
    },
    #[error("{file} was made by a geartopo that plans differently from this one; nothing was changed. Run `geartopo plan` again.")]
    PlansDifferently { file: String },
    #[error("the secret value of {which} has changed since {file} was made (it is read again from its environment variable or file, and its hash no longer matches the one the plan recorded); nothing was changed. Run `geartopo plan` again.")]
    SecretChanged { file: String, which: String },
}

/// A salted SHA-256 of every secret env value (`CONTAINER.KEY`), recorded in a
/// saved plan instead of the value: values read from the environment or a file are
/// read again by `apply`, which must refuse if they changed since the plan.
pub fn secret_hashes(
    topology: &crate::topology::Topology,
    salt: &str,
) -> std::collections::BTreeMap<String, String> {
    use sha2::{Digest, Sha256};
    let mut out = std::collections::BTreeMap::new();
    for c in &topology.containers {
        for (k, v) in c.env.iter().filter(|(_, v)| v.secret) {
            let mut h = Sha256::new();
            h.update(salt.as_bytes());
            h.update([0]);
            h.update(v.value.as_bytes());
            let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
            out.insert(format!("{}.{k}", c.name), hex);
        }
    }
    out
}

/// The secrets read now must hash as the saved plan recorded them.
pub fn check_secrets(
    file: &str,
    salt: &str,
    saved: &std::collections::BTreeMap<String, String>,
    topology: &crate::topology::Topology,
) -> Result<(), SavedPlanError> {
    let now = secret_hashes(topology, salt);
    let changed = now
        .iter()
        .filter(|(k, h)| saved.get(*k) != Some(*h))
        .map(|(k, _)| k.as_str())
        .chain(
            saved
                .keys()
                .filter(|k| !now.contains_key(*k))
                .map(String::as_str),
        )
        .next();
    match changed {
        None => Ok(()),
        Some(which) => Err(SavedPlanError::SecretChanged {
            file: file.to_string(),
            which: format!(
                "env {} of container {}",
                which.rsplit_once('.').map_or(which, |(_, k)| k),
                which.rsplit_once('.').map_or("", |(c, _)| c)
            ),
        }),
    }
}

/// What `plan` depends on in the nodes read now (`plan::fingerprint_for`) must
/// have the fingerprint the saved plan was made against: sockets and containers
/// of others that came and went elsewhere on a node do not make it stale.
pub fn check_fingerprint(
    file: &str,
    saved_fingerprint: &str,
    plan: &crate::plan::Plan,
    state: &ObservedState,
) -> Result<(), SavedPlanError> {
    let now = plan.fingerprint_of(state);
    if now == saved_fingerprint {
        Ok(())
    } else {
        Err(SavedPlanError::Stale {
            file: file.to_string(),
            then: saved_fingerprint.to_string(),
            now,
        })
    }
}

/// Same inputs give the same plan, unless this geartopo plans differently from
/// the one that saved it: then carry out nothing rather than something else.
pub fn check_same_plan(
    file: &str,
    saved_plan: &serde_json::Value,
    plan: &Plan,
) -> Result<(), SavedPlanError> {
    if crate::render::plan_json(plan) == *saved_plan {
        Ok(())
    } else {
        Err(SavedPlanError::PlansDifferently {
            file: file.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::testing::{applied_state, empty_state};

    fn topology() -> crate::topology::Topology {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/redis-todo.toml"),
        )
        .unwrap();
        crate::topology::parse("redis-todo.toml", text.as_bytes()).unwrap()
    }

    #[test]
    fn a_plan_saved_against_the_state_read_now_holds() {
        let t = topology();
        let state = empty_state(&t);
        let p = plan(&t, &state, None).unwrap();
        let saved = crate::render::plan_json(&p);
        assert_eq!(check_fingerprint("p", &p.fingerprint, &p, &state), Ok(()));
        assert_eq!(check_same_plan("p", &saved, &p), Ok(()));
    }

    #[test]
    fn a_state_that_moved_since_the_plan_is_stale() {
        let t = topology();
        let before = empty_state(&t);
        let p = plan(&t, &before, None).unwrap();
        // Somebody applied in between: the nodes now run the containers.
        let after = applied_state(&t, &p);
        let err = check_fingerprint("p.plan", &p.fingerprint, &p, &after).unwrap_err();
        assert!(matches!(err, SavedPlanError::Stale { .. }), "{err}");
        assert!(err.to_string().starts_with("stale plan:"), "{err}");
        assert!(err.to_string().contains("Nothing was changed"), "{err}");
    }

    /// A socket opening on a node in the host-port range, on a port the plan does
    /// not use, leaves a saved plan valid; one on a port the plan publishes on
    /// makes it stale.
    #[test]
    fn only_ports_the_plan_publishes_on_make_it_stale() {
        let t = topology();
        let before = empty_state(&t);
        let p = plan(&t, &before, None).unwrap();
        let d = p.desired.iter().find(|d| !d.publish.is_empty()).unwrap();
        let (protocol, _, used) = d.publish[0];
        let mut unrelated = before.clone();
        let ns = unrelated.nodes.get_mut(&d.node).unwrap();
        ns.taken_ports
            .insert((protocol.into(), used.wrapping_add(17)));
        ns.names.insert("somebody-elses".into());
        assert_ne!(unrelated.fingerprint(), before.fingerprint());
        assert_eq!(
            check_fingerprint("p", &p.fingerprint, &p, &unrelated),
            Ok(())
        );
        let mut relevant = before.clone();
        let ns = relevant.nodes.get_mut(&d.node).unwrap();
        ns.taken_ports.insert((protocol.into(), used));
        let err = check_fingerprint("p", &p.fingerprint, &p, &relevant).unwrap_err();
        assert!(matches!(err, SavedPlanError::Stale { .. }), "{err}");
    }

    #[test]
    fn a_plan_this_geartopo_would_make_differently_is_refused() {
        let t = topology();
        let state = empty_state(&t);
        let p = plan(&t, &state, None).unwrap();
        let mut saved = crate::render::plan_json(&p);
        saved["changes"][0]["image"] = "something/else".into();
        let err = check_same_plan("p.plan", &saved, &p).unwrap_err();
        assert_eq!(
            err,
            SavedPlanError::PlansDifferently {
                file: "p.plan".into()
            }
        );
    }

    #[test]
    fn a_secret_that_changed_since_the_plan_is_refused_and_never_written() {
        let mut t = crate::topology::parse(
            "t.toml",
            b"name = \"t\"\n[nodes.n]\naddress = \"198.18.0.1\"\n[containers.a]\nnode = \"n\"\nimage = \"i\"\nenv = { K = { value = \"hunter2\", secret = true }, P = \"plain\" }\n",
        )
        .unwrap();
        let saved = secret_hashes(&t, "salt1");
        assert_eq!(
            saved.keys().collect::<Vec<_>>(),
            ["a.K"],
            "plain values are not recorded"
        );
        assert!(!saved["a.K"].contains("hunter2"));
        assert_ne!(saved, secret_hashes(&t, "salt2"), "salted");
        assert_eq!(check_secrets("p", "salt1", &saved, &t), Ok(()));
        t.containers[0].env.get_mut("K").unwrap().value = "hunter3".into();
        let err = check_secrets("p.plan", "salt1", &saved, &t).unwrap_err();
        assert_eq!(
            err,
            SavedPlanError::SecretChanged {
                file: "p.plan".into(),
                which: "env K of container a".into()
            }
        );
        assert!(err.to_string().contains("nothing was changed"), "{err}");
    }
}

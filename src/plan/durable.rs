//! Durable links in the plan (docs/durable.md): what a node keeps so that a
//! container's rules come back at every start (hook program, hook file, one
//! rules file per container) is live state like the rules themselves: missing or
//! different shows as drift, and apply repairs it through the container's rules
//! step, which writes them. A container made before durable links is its own
//! kind of change, made only on request. Pure.

use crate::node::durable::{
    self, DOCKER_RUNTIME, HOOK_FILE, HOOK_FILE_MODE, HOOK_MODE, RULES_MODE, RUNTIME_FILE,
};
use crate::state::{DurableState, NodeState, ObservedContainer};
use crate::topology::model::{Runtime, Topology};

use super::{Action, Change, Desired, Drift, NotDurable};

/// The reason of an update that writes a container's rules file again.
pub(crate) const RULES_FILE: &str = "rules file";
/// The reason of an update that puts the node's hook back.
pub(crate) const HOOK: &str = "hook";
/// The reason of a replace that makes a container durable.
pub(crate) const MAKE_DURABLE: &str = "make durable";

/// The runtime a container geartopo creates on this node runs under: the
/// wrapper, when the node is a docker node whose dockerd has it registered at the
/// path this node's state directory gives it (`geartopo node prepare`).
pub(crate) fn docker_runtime(runtime: Runtime, ns: Option<&NodeState>) -> Option<String> {
    let ds = ns?.durable.as_ref()?;
    (runtime == Runtime::Docker && prepared(ds)).then(|| DOCKER_RUNTIME.to_string())
}

/// Whether dockerd has the wrapper registered where this node keeps it.
fn prepared(ds: &DurableState) -> bool {
    ds.state_dir != "-"
        && ds.docker_runtime.as_deref() == Some(&format!("{}/{RUNTIME_FILE}", ds.state_dir))
}

/// What a file found on the node is, against what it should be.
fn file_problem(
    ds: &DurableState,
    path: &str,
    mode: &str,
    text: &str,
    what: &str,
) -> Option<String> {
    match ds.files.get(path) {
        None => Some(format!("{what} {path} is missing")),
        Some((_, h)) if *h != durable::sha256(text) => {
            Some(format!("{what} {path} differs from what geartopo wrote"))
        }
        Some((m, _)) if m != mode => Some(format!("{what} {path} has mode {m} (want {mode})")),
        Some(_) => None,
    }
}

/// A change that (also) runs the rules step of `d`, with `reason`.
fn with_reason(
    d: &Desired,
    oc: &ObservedContainer,
    change: Option<Change>,
    reason: &str,
) -> Option<Change> {
    let mut c = change.unwrap_or_else(|| Change {
        container: d.container.clone(),
        node: d.node.clone(),
        runtime_name: d.runtime_name.clone(),
        action: Action::Update,
        start: false,
        rules_before: oc.chains.as_ref().map(|c| c.rules.clone()),
        rules_after: d.rules.clone(),
        reasons: Vec::new(),
        observed_id: Some(oc.id.clone()),
        observed_image: Some(oc.image.clone()),
        desired: Some(d.clone()),
        rules_file: oc.rules_file.clone(),
    });
    if !c.reasons.iter().any(|r| r == reason) {
        c.reasons.push(reason.to_string());
    }
    Some(c)
}

/// Checks one desired container's durability against what was observed:
/// returns the change to make (the one `diff` planned, possibly with a repair of
/// its rules file added) and records drift and not-durable containers.
#[allow(clippy::too_many_arguments)]
pub(super) fn check(
    topology: &Topology,
    d: &Desired,
    oc: Option<&ObservedContainer>,
    ns: &NodeState,
    change: Option<Change>,
    make_durable: bool,
    drift: &mut Vec<Drift>,
    not_durable: &mut Vec<NotDurable>,
) -> Option<Change> {
    let Some(oc) = oc else { return change };
    if matches!(
        change.as_ref().map(|c| &c.action),
        Some(Action::Replace { .. })
    ) {
        return change;
    }
    // On a prepared docker node, a container that does not run under the
    // wrapper (created before the node was prepared) gets no hook at its starts.
    let unwrapped = d.oci_runtime.is_some() && oc.oci_runtime != d.oci_runtime;
    if oc.rules_file.is_none() || unwrapped {
        if make_durable {
            let mut c = super::diff::replace_requested(d, Some(oc), change)
                .expect("an observed container is replaced");
            c.reasons = vec![MAKE_DURABLE.to_string()];
            return Some(c);
        }
        not_durable.push(NotDurable {
            container: d.container.clone(),
            node: d.node.clone(),
            runtime_name: d.runtime_name.clone(),
        });
        if oc.rules_file.is_none() {
            return change;
        }
    }
    let Some(file) = &oc.rules_file else {
        return change;
    };
    let Some(ds) = ns.durable.as_ref().filter(|ds| ds.state_dir != "-") else {
        return change;
    };
    let path = format!("{}/rules/{file}", ds.state_dir);
    let text = durable::rules_file_of(d.firewall, &topology.name, &d.container, &d.rules);
    let Some(problem) = file_problem(ds, &path, RULES_MODE, &text, "rules file") else {
        return change;
    };
    // The rules change now: their step writes the file anyway, and a file
    // that differs because the rules do is no drift.
    let changing = change
        .as_ref()
        .is_some_and(|c| c.reasons.iter().any(|r| r == "rules"));
    if changing && ds.files.contains_key(&path) {
        return change;
    }
    drift.push(Drift {
        container: d.container.clone(),
        node: d.node.clone(),
        what: problem,
    });
    with_reason(d, oc, change, RULES_FILE)
}

/// The node-level part: the hook program and hook file. When they are missing or
/// different and a durable container of this topology is on the node, its rules
/// step (the first such container's) puts them back. Also the warning about the
/// boot service.
#[allow(clippy::too_many_arguments)]
pub(super) fn check_node(
    topology: &Topology,
    node: &str,
    ns: &NodeState,
    changes: &mut Vec<Change>,
    drift: &mut Vec<Drift>,
    warnings: &mut Vec<String>,
    in_scope: &dyn Fn(&str) -> bool,
    desired: &[Desired],
) {
    let Some(ds) = ns.durable.as_ref() else {
        return;
    };
    let runtime = topology.nodes.get(node).map(|n| n.runtime);
    if runtime == Some(Runtime::Podman) && !matches!(ds.systemd.as_str(), "none" | "enabled") {
        warnings.push(format!(
            "node {node} runs systemd, and podman-restart.service is {}: after a reboot no container comes back. Enable it on the node: systemctl enable podman-restart.service",
            ds.systemd
        ));
    }
    if ds.state_dir == "-" {
        warnings.push(format!(
            "node {node}: GEARTOPO_STATE_DIR or GEARTOPO_HOOKS_DIR is not an absolute path of A-Z a-z 0-9 _ . - /: rules cannot be kept for restarts"
        ));
        return;
    }
    let mut problems = Vec::new();
    if let Some(p) = file_problem(
        ds,
        &format!("{}/hook", ds.state_dir),
        HOOK_MODE,
        durable::HOOK,
        "hook program",
    ) {
        problems.push(p);
    }
    if runtime == Some(Runtime::Docker) {
        if prepared(ds) {
            if let Some(p) = file_problem(
                ds,
                &format!("{}/{RUNTIME_FILE}", ds.state_dir),
                HOOK_MODE,
                durable::RUNTIME,
                "runtime wrapper",
            ) {
                problems.push(p);
            }
        } else if ns.containers.values().any(|oc| oc.rules_file.is_some())
            || desired.iter().any(|d| d.node == node)
        {
            warnings.push(not_prepared_warning(node, ds));
        }
    }
    if runtime == Some(Runtime::Podman) {
        if let Some(p) = file_problem(
            ds,
            &format!("{}/{HOOK_FILE}", ds.hooks_dir),
            HOOK_FILE_MODE,
            &durable::hook_file(&ds.state_dir),
            "hook file",
        ) {
            problems.push(p);
        }
    }
    if problems.is_empty() {
        return;
    }
    // The first durable container of this topology on the node, in scope.
    let Some(d) = desired.iter().find(|d| {
        d.node == node
            && in_scope(&d.container)
            && ns
                .containers
                .get(&d.container)
                .is_some_and(|oc| oc.rules_file.is_some())
    }) else {
        return;
    };
    let oc = &ns.containers[&d.container];
    drift.push(Drift {
        container: d.container.clone(),
        node: node.to_string(),
        what: problems.join("; "),
    });
    match changes
        .iter()
        .position(|c| c.container == d.container && c.action != Action::Delete)
    {
        Some(i) => {
            if matches!(changes[i].action, Action::Update)
                && !changes[i].reasons.iter().any(|r| r == HOOK)
            {
                changes[i].reasons.push(HOOK.to_string());
            }
        }
        None => changes.extend(with_reason(d, oc, None, HOOK)),
    }
}

/// The warning for a docker node whose dockerd does not have the wrapper
/// registered (where this node keeps it): naming the command that prepares it.
fn not_prepared_warning(node: &str, ds: &DurableState) -> String {
    let what = match ds.docker_runtime.as_deref() {
        None | Some("") => format!("dockerd has no runtime {DOCKER_RUNTIME}"),
        Some(other) => format!(
            "dockerd has the runtime {DOCKER_RUNTIME} at {other}, not at {}/{RUNTIME_FILE}",
            ds.state_dir
        ),
    };
    format!(
        "node {node}: {what}: its containers lose their links when they restart, until the next apply. Prepare the node (registers geartopo's runtime wrapper with dockerd, reloads it): geartopo node prepare FILE --node {node}"
    )
}

#[cfg(test)]
mod tests {
    use crate::plan::tests::{applied, redis_todo};
    use crate::plan::{plan, Action};
    use crate::topology::model::RestartPolicy;

    #[test]
    fn a_changed_restart_policy_replaces_a_durable_container_naming_it() {
        let t = redis_todo();
        let s = applied(&t);
        let mut t2 = t.clone();
        t2.containers[1].restart = RestartPolicy::OnFailure(Some(3));
        let p = plan(&t2, &s, None).unwrap();
        assert_eq!(p.changes.len(), 1);
        assert_eq!(
            p.changes[0].action,
            Action::Replace {
                forced_by: vec!["restart".into()]
            }
        );
    }

    #[test]
    fn a_node_with_systemd_and_the_boot_service_off_gets_a_warning_naming_the_command() {
        let t = redis_todo();
        let mut s = applied(&t);
        s.nodes
            .get_mut("node1")
            .unwrap()
            .durable
            .as_mut()
            .unwrap()
            .systemd = "disabled".into();
        let p = plan(&t, &s, None).unwrap();
        assert!(!p.has_changes());
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0]
            .starts_with("node node1 runs systemd, and podman-restart.service is disabled"));
        assert!(p.warnings[0].ends_with("systemctl enable podman-restart.service"));
        for ok in ["enabled", "none"] {
            s.nodes
                .get_mut("node1")
                .unwrap()
                .durable
                .as_mut()
                .unwrap()
                .systemd = ok.into();
            assert!(plan(&t, &s, None).unwrap().warnings.is_empty());
        }
    }

    #[test]
    fn a_rules_file_readable_by_others_is_drift() {
        let t = redis_todo();
        let mut s = applied(&t);
        let d = s.nodes.get_mut("node1").unwrap().durable.as_mut().unwrap();
        d.files
            .get_mut("/var/lib/geartopo/rules/todo-app1")
            .unwrap()
            .0 = "644".into();
        let p = plan(&t, &s, None).unwrap();
        assert_eq!(p.drift.len(), 1);
        assert_eq!(
            p.drift[0].what,
            "rules file /var/lib/geartopo/rules/todo-app1 has mode 644 (want 600)"
        );
        assert_eq!(p.changes[0].reasons, ["rules file"]);
    }
}

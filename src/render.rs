//! Plans and live status as a person reads them (terraform's symbols, a unified
//! diff of the owned chains); the JSON documents are typed in `crate::output`.
//! Pure: renderers return text.
//! Secret environment values never reach any output.

use similar::TextDiff;

use crate::output::plan::PlanDocument;
use crate::plan::{Action, Change, Desired, NodeChange, Plan};
use crate::text::escape_controls as esc;
use crate::topology::model::Firewall;

/// Terminal colours, off when `NO_COLOR` is set or output is not a terminal.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub fn plain() -> Self {
        Style { color: false }
    }
    /// Colour when `is_terminal` and `NO_COLOR` is unset or empty.
    pub fn detect(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            color: is_terminal && !no_color,
        }
    }
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
}

/// The line printed when nothing differs.
pub const NO_CHANGES: &str = "No changes. Live state matches the topology.";

fn quoted_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", inner.join(", "))
}

fn link_lines(d: &Desired) -> Vec<String> {
    d.links
        .iter()
        .map(|l| {
            let listen = format!("{}:{}/{}", l.listen_ip, l.listen_port, l.protocol.as_str());
            match l.describe.strip_suffix(" (itself)") {
                Some(me) => format!("{listen} -> {me} (itself, {}:{})", l.dest_ip, l.dest_port),
                None => format!("{listen} -> {} ({}:{})", l.describe, l.dest_ip, l.dest_port),
            }
        })
        .collect()
}

fn publish_lines(d: &Desired) -> Vec<String> {
    d.publish
        .iter()
        .map(|(p, port, hp)| format!("{hp} -> {port}/{}", p.as_str()))
        .collect()
}

fn env_lines(d: &Desired) -> Vec<String> {
    d.env
        .iter()
        .map(|(k, v)| {
            if v.secret {
                format!("{k} = (sensitive value)")
            } else {
                format!("{k} = {:?}", v.value)
            }
        })
        .collect()
}

fn rules_diff(before: &[String], after: &[String]) -> String {
    let b = before.iter().map(|r| format!("{r}\n")).collect::<String>();
    let a = after.iter().map(|r| format!("{r}\n")).collect::<String>();
    TextDiff::from_lines(&b, &a)
        .unified_diff()
        .context_radius(2)
        .header("live", "planned")
        .to_string()
}

/// The plan as text, ending with the summary line (or `NO_CHANGES`).
pub fn plan_text(plan: &Plan, style: Style) -> String {
    let mut out = String::new();
    if !plan.drift.is_empty() {
        out.push_str(&style.bold("Note: objects have changed outside geartopo"));
        out.push_str("\n\n");
        for d in &plan.drift {
            out.push_str(&format!(
                "  {} {} on {}: {}\n",
                style.yellow("~"),
                esc(&d.container),
                esc(&d.node),
                esc(&d.what)
            ));
        }
        out.push('\n');
    }
    if !plan.adopted.is_empty() {
        out.push_str(
            &style.bold(
                "Note: containers made before topology ids are adopted by this topology's id",
            ),
        );
        out.push_str("\n\n");
        for a in &plan.adopted {
            out.push_str(&format!(
                "  = {} on {} (\"{}\"): adopted as it is; it carries the id from its next replace\n",
                a.container, a.node, a.runtime_name
            ));
        }
        out.push('\n');
    }
    for w in &plan.warnings {
        out.push_str(&format!("{} {}\n\n", style.yellow("Warning:"), esc(w)));
    }
    if !plan.not_durable.is_empty() {
        out.push_str(
            &style.bold(
                "Note: containers made before durable links lose their links when they restart",
            ),
        );
        out.push_str("\n\n");
        for n in &plan.not_durable {
            out.push_str(&format!(
                "  {} {} on {} (\"{}\"): not durable: replace to make it durable\n",
                style.yellow("!"),
                esc(&n.container),
                esc(&n.node),
                esc(&n.runtime_name)
            ));
        }
        out.push_str(
            "\n  Nothing is done to them unless asked: apply --make-durable replaces them all,\n  apply --replace NAME one of them (each restarts once).\n\n",
        );
    }
    if !plan.has_changes() {
        out.push_str(NO_CHANGES);
        out.push('\n');
        return out;
    }
    out.push_str("geartopo will perform the following actions:\n\n");
    for c in &plan.changes {
        out.push_str(&change_text(c, style));
        out.push('\n');
    }
    for n in &plan.node_changes {
        out.push_str(&node_change_text(n, style));
        out.push('\n');
    }
    for r in &plan.rolls {
        out.push_str(&roll_text(r));
    }
    let s = plan.summary();
    out.push_str(&style.bold(&format!(
        "Plan: {} to add, {} to change, {} to destroy.",
        s.add, s.change, s.destroy
    )));
    out.push('\n');
    out
}

/// A rolling replacement (docs/rolling.md): its group, pace and order.
fn roll_text(r: &crate::plan::roll::Roll) -> String {
    let pace = match r.max_unavailable {
        1 => "one at a time".to_string(),
        n => format!("at most {n} at a time"),
    };
    format!(
        "  # {} will be replaced {pace}, each healthy before the next goes down:\n  #   {}\n\n",
        esc(&r.group),
        r.members
            .iter()
            .map(|m| esc(m).into_owned())
            .collect::<Vec<_>>()
            .join(" -> ")
    )
}

/// A node's private-ports chain (`private_ports`): updated in place, or removed.
fn node_change_text(n: &NodeChange, style: Style) -> String {
    let before = n.rules_before.clone().unwrap_or_default();
    let (sym, what) = if n.rules_after.is_empty() {
        (style.red("-"), "will be removed")
    } else if n.rules_before.is_none() {
        (style.green("+"), "will be created")
    } else {
        (style.yellow("~"), "will be updated in place")
    };
    let mut out = format!(
        "  # private ports chain on {} {what} ({})\n  {sym} node chain \"{}\" {{\n",
        esc(&n.node),
        n.reasons.join(", "),
        n.chain
    );
    for line in rules_diff(&before, &n.rules_after).lines() {
        out.push_str(&format!("      {}\n", esc(line)));
    }
    out.push_str("    }\n");
    out
}

fn change_text(c: &Change, style: Style) -> String {
    let mut out = String::new();
    let (verb, symbol) = match &c.action {
        Action::Create => ("will be created", style.green("+")),
        // Terraform's words for `-replace`.
        Action::Replace { .. } if c.reasons.iter().any(|r| r == "replace requested") => (
            "will be replaced, as requested",
            format!("{}/{}", style.red("-"), style.green("+")),
        ),
        Action::Replace { .. } if c.reasons.iter().any(|r| r == "make durable") => (
            "will be replaced to make it durable, as requested",
            format!("{}/{}", style.red("-"), style.green("+")),
        ),
        Action::Replace { .. } => (
            "must be replaced",
            format!("{}/{}", style.red("-"), style.green("+")),
        ),
        Action::Update => ("will be updated in place", style.yellow("~")),
        Action::Delete => ("will be destroyed", style.red("-")),
    };
    out.push_str(&style.bold(&format!(
        "  # {} on {} {verb}",
        esc(&c.container),
        esc(&c.node)
    )));
    out.push('\n');
    let pad = if matches!(c.action, Action::Replace { .. }) {
        ""
    } else {
        "  "
    };
    out.push_str(&format!(
        "{pad}{symbol} container {:?} {{\n",
        c.runtime_name
    ));
    let plus = style.green("+");
    let tilde = style.yellow("~");
    match &c.action {
        Action::Create => {
            let d = c.desired.as_ref().expect("create has a desired container");
            out.push_str(&attributes(d, &plus));
        }
        Action::Replace { forced_by } => {
            let d = c.desired.as_ref().expect("replace has a desired container");
            for attr in forced_by {
                let line = match attr.as_str() {
                    "image" => format!(
                        "      {tilde} image   = {:?} -> {:?} # forces replacement\n",
                        c.observed_image.as_deref().unwrap_or("?"),
                        d.image
                    ),
                    "publish" => format!(
                        "      {tilde} publish = {} # forces replacement\n",
                        quoted_list(&publish_lines(d))
                    ),
                    "command" => format!(
                        "      {tilde} command = {} # forces replacement\n",
                        quoted_list(&d.command)
                    ),
                    "env" => format!("      {tilde} env (changed) # forces replacement\n"),
                    "restart" => format!(
                        "      {tilde} restart = {:?} # forces replacement\n",
                        d.restart.as_arg()
                    ),
                    other => format!(
                        "      {tilde} {} (changed) # forces replacement\n",
                        esc(other)
                    ),
                };
                out.push_str(&line);
            }
            out.push_str(&format!("        node    = {:?}\n", d.node));
            out.push_str(&mount_lines(d, " "));
            if !d.links.is_empty() {
                out.push_str(&format!(
                    "        links   = {}\n",
                    quoted_list(&link_lines(d))
                ));
            }
        }
        Action::Update => {
            for reason in &c.reasons {
                match reason.as_str() {
                    "rules" => {
                        let before = c.rules_before.clone().unwrap_or_default();
                        if before == c.rules_after {
                            out.push_str(&format!("      {tilde} rules: restore the owned chains and their jumps\n"));
                        } else {
                            let what = match c.desired.as_ref().map(|d| d.firewall) {
                                Some(Firewall::Nftables) => "table ip geartopo, in nft syntax",
                                _ => "owned chains in its nat and filter tables",
                            };
                            out.push_str(&format!("      {tilde} rules ({what}):\n"));
                            for line in rules_diff(&before, &c.rules_after).lines() {
                                // Live lines come from the node: escaped before colour is added.
                                // nft's syntax indents with tabs: shown as spaces.
                                let untabbed = line.replace('\t', "    ");
                                let line = &*esc(&untabbed);
                                let colored = match line.chars().next() {
                                    Some('+') if !line.starts_with("+++") => style.green(line),
                                    Some('-') if !line.starts_with("---") => style.red(line),
                                    _ => line.to_string(),
                                };
                                out.push_str(&format!("          {colored}\n"));
                            }
                        }
                    }
                    "firewall" => {
                        let to = c.desired.as_ref().map(|d| d.firewall).unwrap_or_default();
                        let from = match to {
                            Firewall::Iptables => Firewall::Nftables,
                            Firewall::Nftables => Firewall::Iptables,
                        };
                        out.push_str(&format!(
                            "      {tilde} firewall = {:?} -> {:?} # in place, no restart: the {} rules are written first, then the {} ones removed\n",
                            from.as_str(),
                            to.as_str(),
                            to.as_str(),
                            from.as_str()
                        ));
                    }
                    "start" => out.push_str(&format!("      {tilde} state   = \"stopped\" -> \"running\"\n")),
                    "sysctls" => out.push_str(&format!("      {tilde} sysctls = net.ipv4.ip_forward=1, net.ipv4.conf.all.route_localnet=1\n")),
                    "rules file" => out.push_str(&format!("      {tilde} rules file: written again (the hook reads it at every start)\n")),
                    "hook" => out.push_str(&format!("      {tilde} hook: the node's hook program and hook file written again\n")),
                    other => out.push_str(&format!("      {tilde} {}\n", esc(other))),
                }
            }
        }
        Action::Delete => {
            out.push_str(&format!(
                "      {} image   = {:?}\n",
                style.red("-"),
                c.observed_image.as_deref().unwrap_or("?")
            ));
        }
    }
    out.push_str("    }\n");
    out
}

/// A container's mounts, each named volume saying whether it is made now or
/// kept (a replace mounts the same volume into the new container).
fn mount_lines(d: &Desired, sym: &str) -> String {
    if d.mounts.is_empty() {
        return String::new();
    }
    let mut out = format!("      {sym} volumes = [\n");
    for m in &d.mounts {
        let note = match (&m.volume, m.new) {
            (Some(_), true) => " # volume created",
            (Some(_), false) => " # volume kept",
            (None, _) => " # node path",
        };
        out.push_str(&format!("          {:?},{note}\n", m.arg()));
    }
    out.push_str("        ]\n");
    out
}

fn attributes(d: &Desired, sym: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!("      {sym} node    = {:?}\n", d.node));
    out.push_str(&format!("      {sym} image   = {:?}\n", d.image));
    if !d.command.is_empty() {
        out.push_str(&format!(
            "      {sym} command = {}\n",
            quoted_list(&d.command)
        ));
    }
    if !d.env.is_empty() {
        out.push_str(&format!("      {sym} env     = {{\n"));
        for l in env_lines(d) {
            out.push_str(&format!("          {l}\n"));
        }
        out.push_str("        }\n");
    }
    if !d.publish.is_empty() {
        out.push_str(&format!(
            "      {sym} publish = {}\n",
            quoted_list(&publish_lines(d))
        ));
    }
    out.push_str(&mount_lines(d, sym));
    let options = d.options.create_args();
    if !options.is_empty() {
        out.push_str(&format!(
            "      {sym} options = {}\n",
            esc(&crate::transport::shell::join(&options))
        ));
    }
    if !d.links.is_empty() {
        out.push_str(&format!("      {sym} links   = [\n"));
        for l in link_lines(d) {
            out.push_str(&format!("          {l:?},\n"));
        }
        out.push_str("        ]\n");
    }
    out
}

/// Why no plan was made: every node that failed, by name, and no partial plan.
pub fn no_plan<E: std::fmt::Display>(what: &str, errors: &[E]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    format!(
        "{what}; no plan was made (a plan needs every node):\n{}",
        lines.join("\n")
    )
}

/// The plan as JSON (`crate::output::plan::PlanDocument`, docs/json.md), as a
/// value: what a saved plan records and what apply compares it with.
pub fn plan_json(plan: &Plan) -> serde_json::Value {
    serde_json::to_value(PlanDocument::new(plan)).expect("a plan document serializes")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::plan;
    use crate::plan::tests::{applied, redis_todo};
    use crate::state::RunState;

    /// What a hostile node can put in front of the operator's terminal: clear the
    /// screen, retitle the window (OSC ended by BEL), and reverse the reading order.
    const CLEAR: &str = "\x1b[2J";
    const TITLE: &str = "\x1b]0;title\x07";
    const RLO: &str = "\u{202e}";

    fn assert_no_raw_controls(text: &str) {
        for bad in ['\x1b', '\x07', '\u{202e}', '\r'] {
            assert!(!text.contains(bad), "raw {bad:?} in:\n{text}");
        }
    }

    #[test]
    fn node_provided_rule_lines_images_names_and_drift_print_escaped() {
        let t = redis_todo();
        let mut s = applied(&t);
        let node1 = s.nodes.get_mut("node1").unwrap();
        let app = node1.containers.get_mut("app1").unwrap();
        // A rule line added by hand on the node: drift, and a line of the diff.
        app.chains.as_mut().unwrap().rules.push(format!(
            "-A GEARTOPO-OUTPUT -m comment --comment \"{CLEAR}{TITLE}\" -j ACCEPT"
        ));
        app.sysctls
            .insert("net.ipv4.ip_forward".into(), format!("0{CLEAR}"));
        // A container of ours that the file no longer names, with a hostile image.
        let mut gone = app.clone();
        gone.container = format!("old{RLO}gpj.exe");
        gone.runtime_name = format!("todo-old{TITLE}");
        gone.image = format!("evil{RLO}{CLEAR}");
        node1.containers.insert(gone.container.clone(), gone);
        // A stopped container whose runtime reports a hostile status.
        let db = s
            .nodes
            .get_mut("node4")
            .unwrap()
            .containers
            .get_mut("redisdb")
            .unwrap();
        db.state = RunState::Stopped(format!("exited{CLEAR}"));
        db.image = format!("redis{TITLE}");
        let mut t2 = t.clone();
        t2.containers[0].image = "localhost/other:1".into();

        // The image change replaces redisdb (its observed image shown); without
        // it, redisdb is started again (its observed status shown as drift).
        let replaced = plan(&t2, &s, None).unwrap();
        let started = plan(&t, &s, None).unwrap();
        for style in [Style::plain(), Style { color: true }] {
            let text = plan_text(&replaced, style) + &plan_text(&started, style);
            if style.color {
                // Colour is geartopo's own: every ESC left is one of its SGR codes.
                let without_sgr = text
                    .replace("\x1b[0m", "")
                    .replace("\x1b[1m", "")
                    .replace("\x1b[31m", "")
                    .replace("\x1b[32m", "")
                    .replace("\x1b[33m", "");
                assert_no_raw_controls(&without_sgr);
                continue;
            }
            assert_no_raw_controls(&text);
            for shown in [
                "\\x1b[2J\\x1b]0;title\\x07",
                "old\\u{202e}gpj.exe",
                "exited\\x1b[2J",
                "0\\x1b[2J",
                "\"redis\\u{1b}]0;title\\u{7}\"",
            ] {
                assert!(text.contains(shown), "{shown} not in:\n{text}");
            }
        }
    }
}

//! Read progress on a terminal: one spinner line per node on stderr while plan,
//! show, apply and destroy connect to and read the nodes, cleared before anything
//! is printed on stdout. On a pipe nothing is drawn at all (`read_progress`).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::observe::{NoProgress, ReadProgress};

/// Spinners when stderr is a terminal, nothing otherwise.
pub fn read_progress<'a>(nodes: impl IntoIterator<Item = &'a String>) -> Box<dyn ShownProgress> {
    if std::io::stderr().is_terminal() {
        Box::new(ReadBars::new(nodes, ProgressDrawTarget::stderr()))
    } else {
        Box::new(NoProgress)
    }
}

/// A `ReadProgress` that may have drawn something to take away.
pub trait ShownProgress: ReadProgress {
    /// Takes the lines away (and stops their ticking); call before printing.
    fn clear(&self);
}

impl ShownProgress for NoProgress {
    fn clear(&self) {}
}

/// One spinner per node, in node-name order.
pub struct ReadBars {
    bars: MultiProgress,
    by_node: BTreeMap<String, ProgressBar>,
}

impl ReadBars {
    pub fn new<'a>(
        nodes: impl IntoIterator<Item = &'a String>,
        target: ProgressDrawTarget,
    ) -> Self {
        let bars = MultiProgress::with_draw_target(target);
        let style =
            ProgressStyle::with_template("{spinner} {prefix}: {msg}").expect("valid template");
        let by_node = nodes
            .into_iter()
            .map(|n| {
                let bar = bars.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(n.clone());
                // Until its turn comes (`--parallelism` nodes at a time).
                bar.set_message("waiting...");
                bar.enable_steady_tick(Duration::from_millis(120));
                (n.clone(), bar)
            })
            .collect();
        ReadBars { bars, by_node }
    }

    fn say(&self, node: &str, message: String) {
        if let Some(bar) = self.by_node.get(node) {
            bar.set_message(message);
        }
    }
}

impl ReadProgress for ReadBars {
    fn connecting(&self, node: &str) {
        self.say(node, "connecting...".into());
    }
    fn reading(&self, node: &str) {
        self.say(node, "reading...".into());
    }
    fn read(&self, node: &str, containers: usize, elapsed: Duration) {
        let noun = if containers == 1 {
            "container"
        } else {
            "containers"
        };
        self.say(
            node,
            format!("read ({containers} {noun}, {:.2}s)", elapsed.as_secs_f64()),
        );
        if let Some(bar) = self.by_node.get(node) {
            bar.disable_steady_tick();
        }
    }
    fn failed(&self, node: &str, reason: &str) {
        // The errors name their node; the line already does.
        let reason = reason
            .strip_prefix(&format!("node {node}: "))
            .unwrap_or(reason);
        self.say(
            node,
            format!("FAILED: {}", crate::text::escape_controls(reason)),
        );
        if let Some(bar) = self.by_node.get(node) {
            bar.disable_steady_tick();
        }
    }
}

impl ShownProgress for ReadBars {
    fn clear(&self) {
        for bar in self.by_node.values() {
            bar.finish_and_clear();
        }
        self.bars.clear().ok();
    }
}

impl Drop for ReadBars {
    fn drop(&mut self) {
        self.clear();
    }
}

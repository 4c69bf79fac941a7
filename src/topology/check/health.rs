//! Checks of a container's `health` and of `max_unavailable` (containers and
//! views): the rolling replacement's settings (docs/rolling.md).

use serde_spanned::Spanned;

use super::Checker;
use crate::topology::diag::Problem;
use crate::topology::model::{Health, Probe};
use crate::topology::raw::RawHealth;

/// Defaults: one try a second for 30 s, each try given 2 s.
pub(crate) const DEFAULT_INTERVAL_MS: u64 = 1000;
pub(crate) const DEFAULT_TIMEOUT_MS: u64 = 2000;
pub(crate) const DEFAULT_RETRIES: u32 = 30;
/// A check longer than an hour is a typo, not a cluster's start-up.
const MAX_DURATION_MS: u64 = 3_600_000;
const MAX_RETRIES: i64 = 10_000;

/// `500ms`, `2s`, `1m`; `None` when it is none of these.
pub(crate) fn duration_ms(text: &str) -> Option<u64> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() || digits.len() > 9 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(n),
        "s" => Some(n * 1000),
        "m" => Some(n * 60_000),
        _ => None,
    }
}

impl Checker<'_> {
    pub(super) fn health(&mut self, h: &Spanned<RawHealth>) -> Option<Health> {
        let raw = h.get_ref();
        let probe = match (&raw.tcp, &raw.command) {
            (Some(port), None) => {
                if *port.get_ref() == 0 {
                    self.push(Problem::at(
                        "health check on port 0",
                        port.span(),
                        "expected a port from 1 to 65535",
                    ));
                    return None;
                }
                Probe::Tcp(*port.get_ref())
            }
            (None, Some(cmd)) => {
                if cmd.get_ref().is_empty() {
                    self.push(Problem::at(
                        "empty health check command",
                        cmd.span(),
                        "give the command and its arguments",
                    ));
                    return None;
                }
                for arg in cmd.get_ref() {
                    if arg.get_ref().contains('\0') {
                        self.push(Problem::at(
                            "NUL in a health check argument",
                            arg.span(),
                            "not allowed",
                        ));
                        return None;
                    }
                }
                Probe::Command(cmd.get_ref().iter().map(|a| a.get_ref().clone()).collect())
            }
            _ => {
                self.push(
                    Problem::at(
                        "a health check needs exactly one of `tcp` and `command`",
                        h.span(),
                        "here",
                    )
                    .help("e.g. `health = { tcp = 2379 }` or `health = { command = [\"etcdctl\", \"endpoint\", \"health\"] }`"),
                );
                return None;
            }
        };
        let interval = self.health_duration(raw.interval.as_ref(), DEFAULT_INTERVAL_MS);
        let timeout = self.health_duration(raw.timeout.as_ref(), DEFAULT_TIMEOUT_MS);
        let retries = match &raw.retries {
            None => Some(DEFAULT_RETRIES),
            Some(r) if (1..=MAX_RETRIES).contains(r.get_ref()) => Some(*r.get_ref() as u32),
            Some(r) => {
                self.push(Problem::at(
                    format!("invalid health check retries {}", r.get_ref()),
                    r.span(),
                    format!("expected 1 to {MAX_RETRIES}"),
                ));
                None
            }
        };
        Some(Health {
            probe,
            interval_ms: interval?,
            timeout_ms: timeout?,
            retries: retries?,
        })
    }

    fn health_duration(&mut self, d: Option<&Spanned<String>>, default: u64) -> Option<u64> {
        let Some(d) = d else { return Some(default) };
        match duration_ms(d.get_ref()) {
            Some(ms) if (1..=MAX_DURATION_MS).contains(&ms) => Some(ms),
            _ => {
                self.push(Problem::at(
                    format!("invalid duration {:?}", d.get_ref()),
                    d.span(),
                    "expected a number and a unit, ms, s or m (e.g. 500ms, 2s), above 0 and at most 1h",
                ));
                None
            }
        }
    }

    /// `max_unavailable`: 1 when omitted.
    pub(super) fn max_unavailable(&mut self, m: Option<&Spanned<i64>>) -> u32 {
        match m {
            None => 1,
            Some(m) if (1..=i64::from(u32::MAX)).contains(m.get_ref()) => *m.get_ref() as u32,
            Some(m) => {
                self.push(Problem::at(
                    format!("invalid max_unavailable {}", m.get_ref()),
                    m.span(),
                    "expected 1 or more",
                ));
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::duration_ms;
    use crate::topology::model::Probe;

    const BASE: &str = "name = \"t\"\n[nodes.n1]\naddress = \"198.18.0.1\"\n[containers.db]\nnode = \"n1\"\nimage = \"i\"\n";

    /// (message, the text its first label points at) of each problem.
    fn problems(extra: &str) -> Vec<(String, String)> {
        let text = format!("{BASE}{extra}");
        let err = crate::topology::parse("t.toml", text.as_bytes()).unwrap_err();
        err.problems
            .iter()
            .map(|p| {
                let span = p.labels[0].span.clone();
                (p.message.clone(), text[span].to_string())
            })
            .collect()
    }

    #[test]
    fn a_health_check_is_checked_where_it_is_written() {
        let ok = crate::topology::parse(
            "t.toml",
            format!("{BASE}health = {{ command = [\"etcdctl\", \"endpoint\", \"health\"], interval = \"500ms\", retries = 5 }}\nmax_unavailable = 2\n").as_bytes(),
        )
        .unwrap();
        let h = ok.containers[0].health.clone().unwrap();
        assert_eq!(
            h.probe,
            Probe::Command(vec!["etcdctl".into(), "endpoint".into(), "health".into()])
        );
        assert_eq!((h.interval_ms, h.timeout_ms, h.retries), (500, 2000, 5));
        assert_eq!(ok.containers[0].max_unavailable, 2);

        let p = problems("health = { tcp = 2379, command = [\"x\"] }\n");
        assert!(
            p[0].0.contains("exactly one of `tcp` and `command`"),
            "{p:?}"
        );
        let p = problems("health = { tcp = 2379, interval = \"2 s\" }\n");
        assert_eq!(p[0].0, "invalid duration \"2 s\"");
        assert_eq!(p[0].1, "\"2 s\"");
        let p = problems("health = { tcp = 2379, retries = 0 }\nmax_unavailable = 0\n");
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].1, "0");
        assert!(p[1].0.contains("max_unavailable"), "{p:?}");
        let p = problems("health = { tcp = 2379, every = \"1s\" }\n");
        assert!(p[0].0.contains("every"), "{p:?}");
    }

    #[test]
    fn durations() {
        assert_eq!(duration_ms("500ms"), Some(500));
        assert_eq!(duration_ms("2s"), Some(2000));
        assert_eq!(duration_ms("1m"), Some(60_000));
        for bad in ["", "s", "2", "2h", "-1s", "1.5s", " 2s", "99999999999s"] {
            assert_eq!(duration_ms(bad), None, "{bad}");
        }
    }
}

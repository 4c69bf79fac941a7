//! The health check script (docs/rolling.md): up to `retries` tries, `interval`
//! apart, each bounded by `timeout`; a TCP connect to 127.0.0.1:PORT inside the
//! container's network namespace (nsenter, then bash's /dev/tcp or nc), or the
//! command run in the container (`exec`). Exit 0 once a try succeeds; exit 1 with
//! the last try's error after the last one. Pure text, no I/O.

use crate::topology::model::{Health, Probe, Runtime};
use crate::transport::shell::{join, quote};

/// Milliseconds as `sleep` and `timeout` take them: `1`, `0.5`, `1.25`.
fn seconds(ms: u64) -> String {
    let (s, frac) = (ms / 1000, ms % 1000);
    if frac == 0 {
        s.to_string()
    } else {
        format!("{s}.{frac:03}").trim_end_matches('0').to_string()
    }
}

/// One try: a command line whose exit status says healthy (0) or not; the
/// container's pid is in `$pid` (0 when it is not running).
fn probe_line(runtime: Runtime, container: &str, health: &Health) -> String {
    let rt = runtime.binary();
    let t = seconds(health.timeout_ms);
    match &health.probe {
        Probe::Tcp(port) => format!(
            "[ \"$pid\" -gt 0 ] 2>/dev/null || {{ echo 'not running'; false; }} && if command -v bash >/dev/null 2>&1; then timeout {t} nsenter -t \"$pid\" -n bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>&1; else timeout {t} nsenter -t \"$pid\" -n nc -z 127.0.0.1 {port} 2>&1; fi"
        ),
        Probe::Command(cmd) => format!(
            "timeout {t} {rt} exec {} {} 2>&1",
            quote(container),
            join(cmd)
        ),
    }
}

/// The script: waits for `container` (its id or runtime name) to be healthy;
/// `name` names it in the error.
pub fn health_script(runtime: Runtime, container: &str, name: &str, health: &Health) -> String {
    let rt = runtime.binary();
    let c = quote(container);
    let what = match &health.probe {
        Probe::Tcp(port) => format!("no connection to 127.0.0.1:{port}"),
        Probe::Command(cmd) => format!("{} failed", cmd[0]),
    };
    // The pid is read at each try: a container restarted by its policy has a new one.
    let pid = match &health.probe {
        Probe::Tcp(_) => {
            format!("  pid=$({rt} inspect -f '{{{{.State.Pid}}}}' {c} 2>/dev/null) || pid=0\n")
        }
        Probe::Command(_) => String::new(),
    };
    format!(
        "i=0\nwhile :; do\n  i=$((i + 1))\n{pid}  if out=$({probe}); then exit 0; fi\n  if [ \"$i\" -ge {retries} ]; then\n    echo {msg}\"$(printf %s \"$out\" | tail -n 3)\" >&2\n    exit 1\n  fi\n  sleep {interval}\ndone\n",
        probe = probe_line(runtime, container, health),
        retries = health.retries,
        interval = seconds(health.interval_ms),
        msg = quote(&format!(
            "{name} is not healthy after {} tries ({what}): ",
            health.retries
        )),
    )
}

/// One try of each check, for `show`: `health NAME healthy` or `health NAME
/// unhealthy` per container (named by its runtime name), never failing.
pub fn probe_script(runtime: Runtime, checks: &[(String, Health)]) -> String {
    let rt = runtime.binary();
    let mut s = String::new();
    for (name, health) in checks {
        let c = quote(name);
        if matches!(health.probe, Probe::Tcp(_)) {
            s.push_str(&format!(
                "pid=$({rt} inspect -f '{{{{.State.Pid}}}}' {c} 2>/dev/null) || pid=0\n"
            ));
        }
        s.push_str(&format!(
            "if {{ {}; }} >/dev/null 2>&1; then echo health {c} healthy; else echo health {c} unhealthy; fi\n",
            probe_line(runtime, name, health)
        ));
    }
    s
}

/// The health lines of `probe_script` in an output: runtime name -> healthy.
pub fn parse_probes(output: &str) -> impl Iterator<Item = (String, bool)> + '_ {
    output.lines().filter_map(|l| {
        let rest = l.strip_prefix("health ")?;
        let (name, word) = rest.rsplit_once(' ')?;
        let name = name.trim_matches('\'').to_string();
        match word {
            "healthy" => Some((name, true)),
            "unhealthy" => Some((name, false)),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_as_sleep_takes_them() {
        assert_eq!(seconds(1000), "1");
        assert_eq!(seconds(500), "0.5");
        assert_eq!(seconds(1250), "1.25");
        assert_eq!(seconds(2001), "2.001");
    }
}

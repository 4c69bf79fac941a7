//! `geartopo node prepare` on a docker node (docs/durable.md): registers
//! geartopo's runtime wrapper with dockerd, the one-time node preparation that
//! makes links come back at every start of a container there. Two round trips:
//! `PrepareRead` reports where the node keeps things, what dockerd has
//! registered and dockerd's configuration file (text and sha256); geartopo adds
//! `runtimes.geartopo` to that text here; `Prepare` writes the wrapper and hook,
//! then, only if the file is still what was read, the new configuration, and
//! reloads dockerd (SIGHUP to the pid in its pid file; dockerd reloads
//! `runtimes` without restarting anything), checks dockerd took it, and puts
//! the old file back if not. Nothing else in the file or on the node changes.

use serde_json::Value;

use super::durable::{DOCKER_CONFIG, DOCKER_PIDFILE, DOCKER_RUNTIME, RUNTIME_FILE, STATE_DIR};

/// What `PrepareRead` found on a node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub state_dir: String,
    pub config_path: String,
    /// The path dockerd has the runtime `geartopo` registered with ("" if none).
    pub registered: String,
    /// The configuration file's sha256 (`absent` when there is none), and its text.
    pub sha: String,
    pub config: Option<String>,
}

impl Found {
    /// The wrapper's path on this node.
    pub fn wrapper(&self) -> String {
        format!("{}/{RUNTIME_FILE}", self.state_dir)
    }
}

const CHECK_PATHS: &str = r#"for p in "$sd" "$cf"; do
  case "$p" in /*) ;; *) echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_DOCKER_CONFIG must be absolute paths (got $p)" >&2; exit 1 ;; esac
  case "$p" in *[!A-Za-z0-9_./-]*) echo "geartopo: GEARTOPO_STATE_DIR and GEARTOPO_DOCKER_CONFIG must be paths of A-Z a-z 0-9 _ . - / (got $p)" >&2; exit 1 ;; esac
done
"#;

/// The `docker info` template that prints the wrapper's registered path.
fn registered_cmd() -> String {
    format!(
        "docker info --format '{{{{with index .Runtimes \"{DOCKER_RUNTIME}\"}}}}{{{{.Path}}}}{{{{end}}}}'"
    )
}

/// The script of `PrepareRead`: changes nothing.
pub fn read_script() -> String {
    format!(
        r#"set -u
sd="{STATE_DIR}"; cf="{DOCKER_CONFIG}"
{CHECK_PATHS}r=$({reg}) || {{ echo "geartopo: dockerd does not answer (docker info failed): is this a docker node, is dockerd running?" >&2; exit 1; }}
echo "geartopo-prepare $sd $cf"
echo "registered $r"
if [ -f "$cf" ]; then echo "config $(sha256sum < "$cf" | cut -d' ' -f1)"; cat "$cf"; else echo "config absent"; fi
"#,
        reg = registered_cmd(),
    )
}

/// Parses what `read_script` printed.
pub fn parse(out: &str) -> Result<Found, String> {
    let mut lines = out.splitn(4, '\n');
    let head: Vec<&str> = lines.next().unwrap_or("").split(' ').collect();
    let ["geartopo-prepare", sd, cf] = head[..] else {
        return Err(format!(
            "unexpected output: {}",
            out.lines().next().unwrap_or("")
        ));
    };
    let registered = lines
        .next()
        .and_then(|l| l.strip_prefix("registered"))
        .map(|r| r.trim().to_string())
        .ok_or("no `registered` line")?;
    let sha = lines
        .next()
        .and_then(|l| l.strip_prefix("config "))
        .ok_or("no `config` line")?
        .to_string();
    let config = (sha != "absent").then(|| lines.next().unwrap_or("").to_string());
    Ok(Found {
        state_dir: sd.to_string(),
        config_path: cf.to_string(),
        registered,
        sha,
        config,
    })
}

/// The configuration with `runtimes.geartopo = {"path": wrapper}`, or `None`
/// when it already says exactly that. The rest stays as it was: a file without
/// `runtimes` gets the key inserted as text after its opening brace (its own
/// layout kept); one with `runtimes` is written back as formatted JSON (same
/// keys and values, keys sorted). An error when the file is not a JSON object,
/// or `runtimes` is not one: nothing is changed then.
pub fn merged(config: Option<&str>, wrapper: &str, path: &str) -> Result<Option<String>, String> {
    let entry = serde_json::json!({ "path": wrapper });
    let text = config.unwrap_or("").trim();
    if text.is_empty() {
        let v = serde_json::json!({ "runtimes": { DOCKER_RUNTIME: entry } });
        return Ok(Some(serde_json::to_string_pretty(&v).unwrap() + "\n"));
    }
    let mut v: Value = serde_json::from_str(text)
        .map_err(|e| format!("{path} is not valid JSON ({e}); nothing was changed"))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| format!("{path} is not a JSON object; nothing was changed"))?;
    match obj.get_mut("runtimes") {
        None => {
            let rest = &text[1..];
            let (sep, rest) = if rest.trim_start().starts_with('}') {
                ("\n", rest.trim_start())
            } else if rest.starts_with('\n') {
                (",", rest)
            } else {
                (", ", rest.trim_start())
            };
            let out = format!(
                "{{\n  \"runtimes\": {{ \"{DOCKER_RUNTIME}\": {{ \"path\": {} }} }}{sep}{rest}\n",
                Value::String(wrapper.into())
            );
            Ok(Some(out))
        }
        Some(Value::Object(rt)) => {
            if rt.get(DOCKER_RUNTIME) == Some(&entry) {
                return Ok(None);
            }
            rt.insert(DOCKER_RUNTIME.into(), entry);
            Ok(Some(serde_json::to_string_pretty(&v).unwrap() + "\n"))
        }
        Some(_) => Err(format!(
            "{path}: \"runtimes\" is not a JSON object; nothing was changed"
        )),
    }
}

/// The script of `Prepare`: the wrapper and hook in place (`programs`), then
/// with `config` = (new text, sha256 read before) the configuration written if
/// unchanged since, dockerd reloaded and checked.
pub fn write_script(programs: &str, config: Option<&(String, String)>) -> String {
    let mut s = format!("set -e\n{programs}");
    let Some((text, expect)) = config else {
        return s;
    };
    s.push_str(&format!(
        r#"set +e
cf="{DOCKER_CONFIG}"; pf="{DOCKER_PIDFILE}"
{CHECK_PATHS}fail() {{ echo "geartopo: $*" >&2; exit 1; }}
now=absent; if [ -f "$cf" ]; then now=$(sha256sum < "$cf" | cut -d' ' -f1); fi
[ "$now" = {expect} ] || fail "$cf changed since it was read; nothing was changed there: run the command again"
pid=$(cat "$pf" 2>/dev/null) || pid=
case $pid in '' | *[!0-9]*) fail "no dockerd pid in $pf (GEARTOPO_DOCKER_PIDFILE): nothing was changed in $cf" ;; esac
[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = dockerd ] || fail "pid $pid of $pf is not a running dockerd: nothing was changed in $cf"
mkdir -p "${{cf%/*}}"
cat > "$cf.geartopo-new" <<'GEARTOPO_CONFIG'
{text}GEARTOPO_CONFIG
if [ -f "$cf" ]; then cp -p "$cf" "$cf.geartopo-old" && chmod "$(stat -c %a "$cf")" "$cf.geartopo-new"; else chmod 644 "$cf.geartopo-new"; fi
mv -f "$cf.geartopo-new" "$cf" || fail "cannot write $cf"
kill -HUP "$pid"
want="$sd/{RUNTIME_FILE}"; i=0; r=
while [ "$i" -lt 50 ]; do
  r=$({reg} 2>/dev/null)
  [ "$r" = "$want" ] && break
  sleep 0.2; i=$((i + 1))
done
if [ "$r" != "$want" ]; then
  if [ -f "$cf.geartopo-old" ]; then mv -f "$cf.geartopo-old" "$cf"; else rm -f "$cf"; fi
  kill -HUP "$pid"
  fail "dockerd (pid $pid) did not take the runtime {DOCKER_RUNTIME} from $cf within 10 s (its log says why); $cf is as it was"
fi
rm -f "$cf.geartopo-old"
echo "reloaded $pid"
"#,
        expect = crate::transport::shell::quote(expect),
        reg = registered_cmd(),
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: &str = "/var/lib/geartopo/runtime";

    #[test]
    fn an_absent_or_empty_configuration_gets_only_the_runtime() {
        for c in [None, Some(""), Some("\n")] {
            let out = merged(c, W, "daemon.json").unwrap().unwrap();
            let v: Value = serde_json::from_str(&out).unwrap();
            assert_eq!(
                v,
                serde_json::json!({"runtimes": {"geartopo": {"path": W}}})
            );
        }
    }

    #[test]
    fn other_keys_stay_as_written_and_a_second_run_changes_nothing() {
        let before = "{\n    \"log-level\": \"warn\",\n    \"data-root\": \"/srv/docker\"\n}\n";
        let out = merged(Some(before), W, "daemon.json").unwrap().unwrap();
        assert!(
            out.contains("    \"log-level\": \"warn\",\n    \"data-root\": \"/srv/docker\"\n}"),
            "{out}"
        );
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["runtimes"]["geartopo"]["path"], W);
        assert_eq!(v["log-level"], "warn");
        assert_eq!(merged(Some(&out), W, "daemon.json").unwrap(), None);
        let empty = merged(Some("{}"), W, "daemon.json").unwrap().unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&empty).unwrap()["runtimes"]["geartopo"]["path"],
            W
        );
    }

    #[test]
    fn other_runtimes_are_kept_and_a_moved_wrapper_is_updated() {
        let before = r#"{"runtimes": {"nvidia": {"path": "/usr/bin/nvidia-container-runtime"}, "geartopo": {"path": "/old/runtime"}}}"#;
        let out = merged(Some(before), W, "daemon.json").unwrap().unwrap();
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            v["runtimes"]["nvidia"]["path"],
            "/usr/bin/nvidia-container-runtime"
        );
        assert_eq!(v["runtimes"]["geartopo"]["path"], W);
    }

    #[test]
    fn a_configuration_that_is_not_a_json_object_is_refused_naming_the_file() {
        for bad in ["{\"a\": ", "[1]", r#"{"runtimes": 3}"#] {
            let e = merged(Some(bad), W, "/etc/docker/daemon.json").unwrap_err();
            assert!(e.starts_with("/etc/docker/daemon.json"), "{e}");
            assert!(e.ends_with("nothing was changed"), "{e}");
        }
    }

    #[test]
    fn what_the_read_script_prints_parses_back() {
        let f = parse("geartopo-prepare /var/lib/geartopo /etc/docker/daemon.json\nregistered \nconfig abc\n{\"a\": 1}\n").unwrap();
        assert_eq!(f.registered, "");
        assert_eq!(f.sha, "abc");
        assert_eq!(f.config.as_deref(), Some("{\"a\": 1}\n"));
        assert_eq!(f.wrapper(), W);
        let f = parse("geartopo-prepare /s /c\nregistered /s/runtime\nconfig absent\n").unwrap();
        assert_eq!((f.registered.as_str(), f.config), ("/s/runtime", None));
        assert!(parse("garbage").is_err());
    }
}

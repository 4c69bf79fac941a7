//! The lock's re-check without a second full read (docs/faults.md, "The re-check
//! under the lock"): the node reads itself as `Observe` does, and instead of
//! sending that back it keeps only what a plan depends on (`DigestScope`), as
//! canonical lines, and answers with their SHA-256: one line,
//! `@@geartopo digest HEX`. `observe::digest` computes the same lines from the
//! observe output the plan was made from; both sides follow `AWK`, line for line.

/// What a plan depends on in one node, as the digest script takes it: each
/// value is a word (validated names, hex ids, numbers), passed to `awk -v`
/// space-separated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestScope {
    /// `tcp:4E20`: a listening socket on that port (hex, as /proc/net prints it).
    pub listen: Vec<String>,
    /// `tcp:20000`: a container publishing that host port.
    pub publish: Vec<String>,
    /// Container names (any owner) the plan's containers take.
    pub names: Vec<String>,
    /// Ids of this topology's containers read in full (run state, pid, ports,
    /// namespace); the others count by their identity (id, names, image, labels).
    pub full: Vec<String>,
    /// This topology's rules files (their names under `STATE_DIR/rules`).
    pub files: Vec<String>,
}

/// The canonical lines, from the observe output on stdin. Variables: `t` the
/// topology, and `lh`, `pp`, `nm`, `fu`, `fl` the fields of `DigestScope` in
/// that order. Each line printed is in scope; sorted and deduplicated
/// (`LC_ALL=C sort -u`), then hashed. Ordered content (a chain's rules, a JSON
/// object's lines) carries a zero-padded sequence number so that the sort keeps
/// its order:
///
/// - `listen PROTO HEX`: a listening socket on a port in scope (/proc/net);
/// - `publish PROTO PORT`, `name NAME`: any container's published host port and
///   name, in scope (podman's `ps -a --format json`, as podman indents it);
/// - `i ID SEQ LINE`: one of the topology's containers by identity (the lines
///   of Id, Image, Labels, Names); `l ID SEQ LINE`: its State, Pid, Ports, when
///   in full;
/// - `n ID SEQ LINE`: its namespace when in full: the section headers (pid,
///   host network, sysctls), the lines of iptables-save naming GEARTOPO and the
///   table headers, nft's JSON of `table ip geartopo`;
/// - `x ...`: the node's own: private-ports lines, subnets, the durable header,
///   the hook's files and this topology's rules files (mode, sha), the end.
pub const AWK: &str = r#"function add(set, list,   a, n, i) { n = split(list, a, " "); for (i = 1; i <= n; i++) set[a[i]] = 1 }
function pad(n) { return sprintf("%06d", n) }
function flush(   i) {
  if (ours && id != "") for (i = 1; i <= nb; i++) if (bc[i] == "i" || (id in FU)) print bc[i] " " id " " bs[i] " " bl[i]
  nb = 0; ni = 0; nl = 0; id = ""; ours = 0; key = ""
}
BEGIN { add(LH, lh); add(PP, pp); add(NM, nm); add(FU, fu); add(FL, fl) }
substr($0, 1, 11) == "@@geartopo " {
  if (sec == "list") flush()
  sec = $2; k = 0
  if (sec == "ns") { cid = $3; nk = 0 }
  if (sec == "ns" || sec == "hostns" || sec == "sysctl" || sec == "nft") { if (cid in FU) print "n " cid " " pad(nk++) " " $0 }
  else if (sec == "subnets" || sec == "durable" || sec == "end") print "x " $0
  next
}
sec == "tcp" || sec == "udp" {
  if (NF >= 4 && $4 == (sec == "tcp" ? "0A" : "07")) { p = $2; sub(/.*:/, "", p); if ((sec ":" p) in LH) print "listen " sec " " p }
  next
}
sec == "sysctl" { if ((cid in FU) && (index($0, "GEARTOPO") || substr($0, 1, 1) == "*")) print "n " cid " " pad(nk++) " " $0; next }
sec == "nft" { if (cid in FU) print "n " cid " " pad(nk++) " " $0; next }
sec == "nodefilter" { print "x nodefilter " pad(k++) " " $0; next }
sec == "durable" {
  p = $3; f = p; sub(/.*\//, "", f); d = ""
  if (index(p, "/")) { d = p; sub(/\/[^\/]*$/, "", d) }
  if (d !~ /\/rules$/ || (f in FL)) print "x " $0
  next
}
sec == "list" {
  l = $0; sub(/,$/, "", l)
  if (l == "  {") { flush(); next }
  if (l == "  }") { flush(); next }
  if (substr(l, 1, 5) == "    \"") { key = substr(l, 6); sub(/".*/, "", key) }
  if (key == "Id" && substr(l, 1, 11) == "    \"Id\": \"") { id = substr(l, 12); sub(/"$/, "", id) }
  if (key == "Labels" && l == "      \"geartopo.topology\": \"" t "\"") ours = 1
  if (key == "Names" && substr(l, 1, 7) == "      \"") { n = substr(l, 8); sub(/"$/, "", n); if (n in NM) print "name " n }
  if (key == "Ports") {
    if (l == "      {") { hp = 0; rg = 1; pr = "" }
    else if (substr(l, 1, 21) == "        \"host_port\": ") hp = substr(l, 22) + 0
    else if (substr(l, 1, 17) == "        \"range\": ") rg = substr(l, 18) + 0
    else if (substr(l, 1, 21) == "        \"protocol\": \"") { pr = substr(l, 22); sub(/"$/, "", pr) }
    else if (l == "      }") { if (rg < 1) rg = 1; for (i = 0; i < rg && hp > 0 && hp + i <= 65535; i++) if ((pr ":" (hp + i)) in PP) print "publish " pr " " (hp + i) }
  }
  c = ""
  if (key == "Id" || key == "Image" || key == "Labels" || key == "Names") c = "i"
  else if (key == "State" || key == "Pid" || key == "Ports") c = "l"
  if (c != "") { nb++; bc[nb] = c; bl[nb] = l; bs[nb] = pad(c == "i" ? ni++ : nl++) }
  next
}
"#;

/// The header of the answer's one line.
pub const ANSWER: &str = "@@geartopo digest";

/// The script: `observe` (the observe script, as `Observe` sends it) run into a
/// variable, and its canonical lines in `scope` hashed. A failed read ends the
/// round trip with the read's status and its stderr, as `Observe` would.
pub fn script(observe: &str, topology: &str, scope: &DigestScope) -> String {
    use crate::transport::shell::quote;
    let words = |v: &[String]| quote(&v.join(" "));
    format!(
        "obs=$(\n{observe}) || exit $?\nprintf '%s\\n' \"$obs\" | awk -v t={t} -v lh={lh} -v pp={pp} -v nm={nm} -v fu={fu} -v fl={fl} '{AWK}' | LC_ALL=C sort -u | sha256sum | sed 's/ .*//; s/^/{ANSWER} /'\n",
        t = quote(topology),
        lh = words(&scope.listen),
        pp = words(&scope.publish),
        nm = words(&scope.names),
        fu = words(&scope.full),
        fl = words(&scope.files),
    )
}

//! Cases about shared nodes (issue 15): the route_localnet guard (CVE-2020-8558)
//! against a real raw frame from the node's bridge; the refusal to touch the node's
//! own namespace through a container of ours with host networking; a replace to an
//! image that cannot be had, which must leave the old container running.

use crate::ensure;
use crate::harness::{lines_with, Ctx, Guard, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

/// A server on `node` answering "`reply` <line>" on TCP `port`, published at `host_port`.
fn server(name: &str, node: &str, image: &str, port: u16, host_port: u16, reply: &str) -> String {
    format!(
        "[containers.{name}]\nnode = \"{node}\"\nimage = \"{image}\"\n\
         command = [\"gt-serve\", \"tcp\", \"{port}\", \"{reply}\"]\n\
         publish = [{{ port = {port}, host_port = {host_port} }}]\n\n"
    )
}

/// The UDP port of the 127.0.0.1-only listener in the guard case.
const LOCAL_PORT: u16 = 9911;

/// Sends one raw Ethernet frame out of the node's interface `dev` (MAC `own`) to `mac`:
/// IPv4 from `src` to 127.0.0.1, UDP to `port`, payload `text`. Run in the node's
/// namespace (python3's AF_PACKET socket: no tool of the image is involved).
/// MACs come from `ip link`: /sys is the machine's, not the namespace's.
const SEND_FRAME: &str = r#"
import socket, struct, sys
dev, own, mac, src, port, text = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6]
payload = (text + "\n").encode()
udp = struct.pack("!HHHH", 40000, port, 8 + len(payload), 0) + payload
def checksum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff
head = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0x4000, 64, 17, 0,
                   socket.inet_aton(src), socket.inet_aton("127.0.0.1"))
head = head[:10] + struct.pack("!H", checksum(head)) + head[12:]
frame = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex(own.replace(":", "")) + b"\x08\x00" + head + udp
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
s.send(frame)
"#;

/// Where a neighbour on the container's bridge stands: the node's interface
/// toward the container, its MAC and address, and the container's MAC.
fn neighbour(ctx: &Ctx, node: &str, container: &str) -> Result<[String; 4], String> {
    let pid = ctx.container_pid(node, container)?;
    let inner = ctx
        .on_node(
            node,
            &format!(
                "nsenter -t {pid} -n sh -c 'ip -o link show dev eth0; ip -4 -o addr show dev eth0'"
            ),
        )
        .ok()?
        .stdout;
    let link_mac = |line: &str| {
        let words: Vec<&str> = line.split_whitespace().collect();
        words
            .iter()
            .position(|w| *w == "link/ether")
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
            .unwrap_or_default()
    };
    let mut lines = inner.lines();
    let mac = link_mac(lines.next().unwrap_or(""));
    let ip = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|a| a.split('/').next())
        .ok_or_else(|| format!("no IPv4 address on eth0 of {container}:\n{inner}"))?
        .to_string();
    let route = ctx
        .on_node(node, &format!("ip -4 -o route get {ip}"))
        .ok()?
        .stdout;
    let word_after = |w: &str| {
        let words: Vec<&str> = route.split_whitespace().collect();
        words
            .iter()
            .position(|x| *x == w)
            .and_then(|i| words.get(i + 1))
            .map(|s| s.to_string())
    };
    let dev = word_after("dev").ok_or_else(|| format!("no route to {ip}: {route}"))?;
    let src = word_after("src").ok_or_else(|| format!("no source for {ip}: {route}"))?;
    let own = link_mac(
        &ctx.on_node(node, &format!("ip -o link show dev {dev}"))
            .ok()?
            .stdout,
    );
    ensure!(mac.len() == 17, "MAC of {container}: {inner}");
    ensure!(own.len() == 17, "MAC of {dev} on {node}: {own:?}");
    Ok([dev, own, src, mac])
}

/// The datagrams the container's 127.0.0.1 listener received so far.
fn received(ctx: &Ctx, node: &str, container: &str) -> Result<Vec<String>, String> {
    let run = ctx.on_node(
        node,
        &format!("podman exec {container} sh -c 'cat /tmp/got 2>/dev/null || true'"),
    );
    Ok(run.ok()?.stdout.lines().map(str::to_string).collect())
}

/// Sends a frame with `text` and says whether the listener got it (waiting a
/// little for it when it should arrive).
fn frame_arrives(ctx: &Ctx, node: &str, container: &str, text: &str) -> Result<bool, String> {
    let [dev, own, src, mac] = neighbour(ctx, node, container)?;
    let script = format!(
        "python3 -c '{}' {dev} {own} {mac} {src} {LOCAL_PORT} {text}",
        SEND_FRAME.replace('\'', "'\\''")
    );
    ctx.on_node(node, &script).ok()?;
    for _ in 0..10 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        if received(ctx, node, container)?.iter().any(|l| l == text) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// CVE-2020-8558: route_localnet=1 (which links need) lets a neighbour on the
/// bridge reach a service bound to 127.0.0.1 inside the container with a frame
/// sent to its MAC. With geartopo's guard it does not arrive; with the guard
/// flushed by hand it does, plan calls that drift, and apply closes it again,
/// while the container's link still carries traffic. (The views case runs with
/// the same guard: view links and a member's own view address.)
pub fn route_localnet_guard(ctx: &Ctx) -> Outcome {
    let name = "e2e-guard";
    let node = "node1";
    let app = "e2e-guard-app";
    // The client's own process is the 127.0.0.1-only UDP listener.
    let body = server("db", "node4", IMAGE, 6379, 50070, "db-on-node4")
        + &format!(
            "[containers.app]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\n\
             command = [\"socat\", \"-u\", \"UDP4-RECV:{LOCAL_PORT},bind=127.0.0.1\", \"OPEN:/tmp/got,creat,append\"]\n\
             links = [{{ to = \"db:6379\" }}]\n\n"
        );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, node, app, "tcp", "127.0.0.1", 6379)? == "db-on-node4 hello",
        "link with the guard in place"
    );
    let filter = ctx.container_filter(node, app)?;
    ensure!(
        lines_with(&filter, "-j GEARTOPO-INPUT") == ["-A INPUT -j GEARTOPO-INPUT"],
        "INPUT does not jump to the guard once:\n{filter}"
    );
    ensure!(
        lines_with(&filter, "route_localnet guard").len() == 1,
        "no guard in {app}'s filter table:\n{filter}"
    );
    ensure!(
        !frame_arrives(ctx, node, app, "probe-guarded")?,
        "a frame to 127.0.0.1 from the bridge reached the listener with the guard in place"
    );

    // The hole, opened by hand: the same frame now arrives (so the probe works).
    ctx.container_iptables(node, app, "-t filter -F GEARTOPO-INPUT")?;
    ensure!(
        frame_arrives(ctx, node, app, "probe-open")?,
        "with the guard flushed, the frame did not reach the 127.0.0.1 listener (probe broken?)"
    );
    let plan = ctx.plan(&file).expect(2)?;
    ensure!(
        plan.output()
            .contains("route_localnet guard in GEARTOPO-INPUT is missing")
            && plan.output().contains("outside geartopo"),
        "plan does not show the flushed guard as drift:\n{}",
        plan.describe()
    );
    let pid = ctx.container_pid(node, app)?;
    ctx.apply(&file)?;
    ensure!(
        ctx.container_pid(node, app)? == pid,
        "restoring the guard restarted the container"
    );
    ensure!(
        !frame_arrives(ctx, node, app, "probe-repaired")?,
        "after apply, a frame to 127.0.0.1 from the bridge still reached the listener"
    );
    ensure!(
        ask_retrying(ctx, node, app, "tcp", "127.0.0.1", 6379)? == "db-on-node4 hello",
        "link after the guard was restored"
    );
    ctx.plan(&file).expect(0)?;
    Ok(())
}

/// A container of ours with host networking (made by hand with our labels): plan
/// is an error naming it, apply changes nothing on the node, and the rules
/// script itself (the golden one, pointed at that container) refuses before it
/// writes anything.
pub fn host_network_is_refused(ctx: &Ctx) -> Outcome {
    let name = "e2e-hostns";
    let node = "node2";
    let runtime_name = "e2e-hostns-c";
    let body = format!(
        "[containers.c]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\n"
    );
    let file = ctx.topology(name, &body);
    let _guard = Guard::new(ctx, &file, name);
    ctx.on_node(
        node,
        &format!(
            "podman run -d --name {runtime_name} --network host \
             --label geartopo.topology={name} --label geartopo.container=c \
             --label geartopo.spec=made-by-hand {IMAGE} sleep inf >/dev/null"
        ),
    )
    .ok()?;
    let id_before = ctx
        .on_node(
            node,
            &format!("podman inspect -f '{{{{.Id}}}}' {runtime_name}"),
        )
        .ok()?
        .stdout;
    let tables =
        |ctx: &Ctx| -> Result<String, String> { Ok(ctx.node_nat(node)? + &ctx.node_filter(node)?) };
    // Counters and the timestamps of the save's comments move by themselves.
    let stable = |t: String| {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split(" [").next().unwrap_or(l).to_string())
            .collect::<Vec<_>>()
    };
    let before = stable(tables(ctx)?);

    let plan = ctx.plan(&file).expect(1)?;
    ensure!(
        plan.output().contains(runtime_name) && plan.output().contains("host networking"),
        "plan does not name the host-network container:\n{}",
        plan.describe()
    );
    let apply = ctx.geartopo(&["apply", &file.display().to_string(), "--auto-approve"]);
    ensure!(
        apply.code != 0 && apply.output().contains("host networking"),
        "apply did not refuse:\n{}",
        apply.describe()
    );
    ensure!(
        stable(tables(ctx)?) == before,
        "apply changed the node's own tables"
    );

    // The rules step's script, exactly as golden, aimed at that container.
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/scripts/podman/rules.sh");
    let script = std::fs::read_to_string(&golden)
        .map_err(|e| format!("{}: {e}", golden.display()))?
        .replace("0123456789abcdef", runtime_name);
    let sysctl_before = ctx
        .on_node(node, "cat /proc/sys/net/ipv4/conf/all/route_localnet")
        .ok()?
        .stdout;
    let run = ctx.on_node(node, &script);
    ensure!(
        run.code == 1 && run.stderr.contains("this node's own"),
        "the rules script did not refuse the node's own namespace:\n{}",
        run.describe()
    );
    ensure!(
        stable(tables(ctx)?) == before,
        "the refused rules script changed the node's tables"
    );
    ensure!(
        ctx.on_node(node, "cat /proc/sys/net/ipv4/conf/all/route_localnet")
            .ok()?
            .stdout
            == sysctl_before,
        "the refused rules script changed the node's route_localnet"
    );
    let id_after = ctx
        .on_node(
            node,
            &format!("podman inspect -f '{{{{.Id}}}}' {runtime_name}"),
        )
        .ok()?
        .stdout;
    ensure!(id_after == id_before, "apply replaced the container");
    Ok(())
}

/// A replace to an image that cannot be had (a typo): apply fails naming the
/// image, and the old container still runs (same id) and still serves its link.
pub fn replace_to_a_missing_image_keeps_the_old_container(ctx: &Ctx) -> Outcome {
    let name = "e2e-typo";
    let missing = "localhost/geartopo-no-such-image:typo";
    let app = "e2e-typo-app";
    let client = format!(
        "[containers.app]\nnode = \"node1\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
         links = [{{ to = \"db:6379\" }}]\n\n"
    );
    let file = ctx.topology(
        name,
        &(server("db", "node3", IMAGE, 6379, 50071, "db-on-node3") + &client),
    );
    let _guard = Guard::new(ctx, &file, name);
    ctx.apply(&file)?;
    ensure!(
        ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link before"
    );
    let id = |ctx: &Ctx| {
        ctx.on_node(
            "node3",
            "podman inspect -f '{{.Id}} {{.State.Status}}' e2e-typo-db",
        )
        .ok()
        .map(|r| r.stdout.trim().to_string())
    };
    let before = id(ctx)?;

    ctx.topology(
        name,
        &(server("db", "node3", missing, 6379, 50071, "db-on-node3") + &client),
    );
    let apply = ctx.geartopo(&["apply", &file.display().to_string(), "--auto-approve"]);
    ensure!(
        apply.code != 0 && apply.output().contains(missing),
        "apply of a missing image did not fail naming it:\n{}",
        apply.describe()
    );
    ensure!(
        id(ctx)? == before && before.ends_with(" running"),
        "the old container did not stay: {before} -> {}",
        id(ctx)?
    );
    ensure!(
        ask_retrying(ctx, "node1", app, "tcp", "127.0.0.1", 6379)? == "db-on-node3 hello",
        "link after the failed replace"
    );
    Ok(())
}

//! Where a lab keeps things and what it names them: state directory, key files,
//! per-node sshd and podman configuration (rendered here, written by the caller),
//! namespace names. Pure: no I/O here, so every name and file is unit-tested.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::spec::LabNode;
use crate::topology::model::Runtime;

/// Where every lab keeps its state, one directory per topology name.
pub const LAB_ROOT: &str = "/var/lib/geartopo-lab";

/// `PATH` of every command on a docker node: Debian's docker.io puts its client at
/// /usr/bin/docker, the one that speaks the node's dockerd 20.10; a newer client
/// elsewhere (/usr/local/bin) must not come first.
pub const DOCKER_NODE_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin";

/// Every namespace a lab creates starts with this, then the lab's short id.
pub const NS_PREFIX: &str = "gtlab-";

/// The names and paths of one lab.
#[derive(Debug, Clone)]
pub struct Layout {
    pub name: String,
    /// `/var/lib/geartopo-lab/<name>`.
    pub dir: PathBuf,
    /// 8 hex characters of sha256(name): namespace names stay short and fixed-size
    /// whatever the topology name, and `down` finds them from the name alone.
    pub id: String,
}

impl Layout {
    pub fn new(root: &Path, name: &str) -> Layout {
        let digest = Sha256::digest(name.as_bytes());
        let id = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        Layout {
            name: name.to_string(),
            dir: root.join(name),
            id,
        }
    }

    /// What every namespace of this lab starts with.
    pub fn ns_prefix(&self) -> String {
        format!("{NS_PREFIX}{}-", self.id)
    }
    /// The namespace holding the bridge every node is plugged into.
    pub fn lan_ns(&self) -> String {
        format!("{}lan", self.ns_prefix())
    }
    /// The namespace `lab exec` runs commands in: a client on the lab's bridge.
    pub fn control_ns(&self) -> String {
        format!("{}ctl", self.ns_prefix())
    }
    /// A node's namespace (`n-` keeps node names apart from `lan` and `ctl`).
    pub fn node_ns(&self, node: &str) -> String {
        format!("{}n-{node}", self.ns_prefix())
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    /// The lab's SSH client key (private); `.pub` beside it.
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }
    pub fn authorized_keys(&self) -> PathBuf {
        self.dir.join("authorized_keys")
    }
    pub fn known_hosts(&self) -> PathBuf {
        self.dir.join("known_hosts")
    }
    pub fn nodes_dir(&self) -> PathBuf {
        self.dir.join("nodes")
    }
    pub fn node(&self, node: &str) -> NodeLayout {
        NodeLayout {
            dir: self.nodes_dir().join(node),
        }
    }
}

/// The files and directories of one node.
#[derive(Debug, Clone)]
pub struct NodeLayout {
    pub dir: PathBuf,
}

impl NodeLayout {
    pub fn host_key(&self) -> PathBuf {
        self.dir.join("ssh_host_ed25519_key")
    }
    pub fn sshd_config(&self) -> PathBuf {
        self.dir.join("sshd_config")
    }
    pub fn sshd_pid(&self) -> PathBuf {
        self.dir.join("sshd.pid")
    }
    pub fn containers_conf(&self) -> PathBuf {
        self.dir.join("containers.conf")
    }
    pub fn storage_conf(&self) -> PathBuf {
        self.dir.join("storage.conf")
    }
    /// The node's own run directory, given to commands as `GEARTOPO_RUN_DIR`
    /// (geartopo's apply lock lives there): lab nodes share this machine's /run,
    /// so a fixed /run/geartopo would make every node one lock.
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run-geartopo")
    }
    /// The node's own persistent geartopo directory (the hook program and the
    /// containers' rules files), given as `GEARTOPO_STATE_DIR` (see docs/durable.md).
    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state-geartopo")
    }
    /// The node's own OCI hooks directory: podman reads it (containers.conf
    /// `hooks_dir`), geartopo writes its hook file there (`GEARTOPO_HOOKS_DIR`).
    pub fn hooks_dir(&self) -> PathBuf {
        self.dir.join("hooks.d")
    }
    /// A docker node's dockerd: its data root (images, containers, volumes).
    pub fn docker_data_root(&self) -> PathBuf {
        self.dir.join("docker")
    }
    /// Its exec root (containerd's state, container namespaces); short, because
    /// containerd's sockets live under it and a socket path has at most 107 bytes.
    pub fn docker_exec_root(&self) -> PathBuf {
        self.dir.join("dx")
    }
    pub fn dockerd_pid(&self) -> PathBuf {
        self.dir.join("dockerd.pid")
    }
    pub fn docker_sock(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }
    /// What dockerd writes on stdout and stderr.
    pub fn dockerd_log(&self) -> PathBuf {
        self.dir.join("dockerd.log")
    }
    /// The longest socket path dockerd and its containerd make under this node's
    /// directory must fit in a unix socket address (107 bytes and a NUL): with long
    /// topology and node names it would not, and dockerd would fail obscurely.
    pub fn check_docker_socket_paths(&self) -> Result<(), String> {
        let longest = self
            .docker_exec_root()
            .join("containerd/containerd.sock.ttrpc");
        let len = longest.as_os_str().len();
        if len > 107 {
            return Err(format!(
                "the docker node's socket {} would be {len} bytes, more than a unix socket \
                 address holds (107); use a shorter topology or node name",
                longest.display()
            ));
        }
        Ok(())
    }

    /// An empty daemon configuration (`{}`), written by `up`.
    pub fn daemon_json(&self) -> PathBuf {
        self.dir.join("daemon.json")
    }
    /// `DOCKER_HOST` for this node's dockerd.
    pub fn docker_host(&self) -> String {
        format!("unix://{}", self.docker_sock().display())
    }
    /// The arguments of this node's dockerd (run inside the node's namespace):
    /// everything it keeps in the node's directory, its storage driver as podman's
    /// (`overlay2`, or `vfs` where the lab directory is itself on overlayfs).
    pub fn dockerd_args(&self, podman_driver: &str) -> Vec<String> {
        let driver = if podman_driver == "overlay" {
            "overlay2"
        } else {
            "vfs"
        };
        vec![
            "--data-root".into(),
            self.docker_data_root().display().to_string(),
            "--exec-root".into(),
            self.docker_exec_root().display().to_string(),
            "--pidfile".into(),
            self.dockerd_pid().display().to_string(),
            "-H".into(),
            self.docker_host(),
            "--storage-driver".into(),
            driver.into(),
            // Not this machine's /etc/docker/daemon.json.
            "--config-file".into(),
            self.daemon_json().display().to_string(),
        ]
    }

    /// Directories the podman configuration points into; created by `up`.
    pub fn podman_dirs(&self) -> Vec<PathBuf> {
        ["storage", "run", "tmp", "networks", "volumes", "hooks.d"]
            .iter()
            .map(|d| self.dir.join(d))
            .collect()
    }

    /// The environment every command on this node runs with, through `lab exec
    /// --node` and through the node's sshd alike: its own podman store and config;
    /// on a docker node also its dockerd's socket and a `PATH` that finds the
    /// client of that dockerd's version.
    pub fn env(&self, node: &str, runtime: Runtime) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "CONTAINERS_CONF".into(),
                self.containers_conf().display().to_string(),
            ),
            (
                "CONTAINERS_STORAGE_CONF".into(),
                self.storage_conf().display().to_string(),
            ),
            ("GEARTOPO_LAB_NODE".into(), node.to_string()),
            (
                "GEARTOPO_RUN_DIR".into(),
                self.run_dir().display().to_string(),
            ),
            (
                "GEARTOPO_STATE_DIR".into(),
                self.state_dir().display().to_string(),
            ),
            (
                "GEARTOPO_HOOKS_DIR".into(),
                self.hooks_dir().display().to_string(),
            ),
        ];
        if runtime == Runtime::Docker {
            env.push(("DOCKER_HOST".into(), self.docker_host()));
            env.push(("PATH".into(), DOCKER_NODE_PATH.into()));
            // Where `geartopo node prepare` registers the runtime wrapper, and
            // the dockerd it reloads: this node's own.
            env.push((
                "GEARTOPO_DOCKER_CONFIG".into(),
                self.daemon_json().display().to_string(),
            ));
            env.push((
                "GEARTOPO_DOCKER_PIDFILE".into(),
                self.dockerd_pid().display().to_string(),
            ));
        }
        env
    }

    /// containers.conf: runc (crun fails on these machines), no default ulimits
    /// (root's defaults cannot be raised here), and every libpod path in this node.
    pub fn render_containers_conf(&self) -> String {
        let d = &self.dir;
        format!(
            "# Written by `geartopo lab up`: this node's own podman engine.\n\
             [containers]\n\
             default_ulimits = []\n\
             \n\
             [engine]\n\
             runtime = \"runc\"\n\
             hooks_dir = [\"{hooks}\"]\n\
             cgroup_manager = \"cgroupfs\"\n\
             events_logger = \"file\"\n\
             tmp_dir = \"{tmp}\"\n\
             image_copy_tmp_dir = \"{tmp}\"\n\
             static_dir = \"{static_dir}\"\n\
             volume_path = \"{volumes}\"\n\
             \n\
             [network]\n\
             network_backend = \"netavark\"\n\
             network_config_dir = \"{networks}\"\n",
            tmp = d.join("tmp").display(),
            hooks = self.hooks_dir().display(),
            static_dir = d.join("storage/libpod").display(),
            volumes = d.join("volumes").display(),
            networks = d.join("networks").display(),
        )
    }

    /// storage.conf: this node's own image and container store, with `driver`
    /// (`overlay`, or `vfs` where the lab directory is itself on overlayfs).
    pub fn render_storage_conf(&self, driver: &str) -> String {
        format!(
            "# Written by `geartopo lab up`: this node's own image and container store.\n\
             [storage]\n\
             driver = \"{driver}\"\n\
             graphroot = \"{}\"\n\
             runroot = \"{}\"\n",
            self.dir.join("storage").display(),
            self.dir.join("run").display(),
        )
    }

    /// sshd_config: listens on the node's address only, key authentication with the
    /// lab's client key, and hands the node's environment to every session.
    /// `SHLVL=1` keeps the machine's own root dotfiles out of the lab's sessions:
    /// bash run by sshd at shell level 1 sources `~/.bashrc` even for `bash -c`,
    /// and the lab's nodes share this machine's /root (on the development
    /// machine that file runs `pyenv init`, 0.1-0.3 s per round trip). A node's
    /// sessions then start as a server's usually do, with no rc file.
    pub fn render_sshd_config(&self, node: &LabNode, authorized_keys: &Path) -> String {
        let set_env: Vec<String> = self
            .env(&node.name, node.runtime)
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!(
            "# Written by `geartopo lab up` for lab node {name}.\n\
             ListenAddress {address}:{port}\n\
             HostKey {host_key}\n\
             PidFile {pid}\n\
             AuthorizedKeysFile {authorized_keys}\n\
             PermitRootLogin prohibit-password\n\
             PubkeyAuthentication yes\n\
             PasswordAuthentication no\n\
             KbdInteractiveAuthentication no\n\
             UsePAM no\n\
             StrictModes no\n\
             PrintMotd no\n\
             UseDNS no\n\
             MaxSessions 64\n\
             MaxStartups 64:30:128\n\
             LogLevel ERROR\n\
             SetEnv SHLVL=1 {set_env}\n",
            name = node.name,
            address = node.address,
            port = node.port,
            host_key = self.host_key().display(),
            pid = self.sshd_pid().display(),
            authorized_keys = authorized_keys.display(),
            set_env = set_env.join(" "),
        )
    }
}

/// One known_hosts line for a node's host key (`[addr]:port` when not 22, as ssh writes it).
pub fn known_hosts_line(node: &LabNode, host_public_key: &str) -> String {
    let host = if node.port == 22 {
        node.address.to_string()
    } else {
        format!("[{}]:{}", node.address, node.port)
    };
    // Keep only "type base64": the key file's comment names this machine.
    let key: Vec<&str> = host_public_key.split_whitespace().take(2).collect();
    format!("{host} {}\n", key.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn node(name: &str, last: u8, port: u16) -> LabNode {
        LabNode {
            name: name.into(),
            address: Ipv4Addr::new(198, 18, 0, last),
            port,
            runtime: Runtime::Podman,
            user: "root".into(),
            sudo: false,
            jump: None,
        }
    }

    #[test]
    fn namespaces_are_short_fixed_and_distinct_per_lab() {
        let a = Layout::new(Path::new("/x"), "todo");
        let b = Layout::new(Path::new("/x"), "todo2");
        assert_eq!(a.id.len(), 8);
        assert_ne!(a.id, b.id);
        assert_eq!(a.lan_ns(), format!("gtlab-{}-lan", a.id));
        assert_eq!(a.control_ns(), format!("gtlab-{}-ctl", a.id));
        assert_eq!(a.node_ns("lan"), format!("gtlab-{}-n-lan", a.id));
        assert!(a.node_ns("node1").starts_with(&a.ns_prefix()));
        assert_eq!(a.dir, Path::new("/x/todo"));
        // The same name always gives the same namespaces: `down` relies on it.
        assert_eq!(Layout::new(Path::new("/y"), "todo").id, a.id);
    }

    #[test]
    fn node_podman_config_stays_in_the_node_dir() {
        let n = Layout::new(Path::new("/var/lib/geartopo-lab"), "t").node("node4");
        let conf = n.render_containers_conf();
        assert!(conf.contains("runtime = \"runc\""));
        assert!(conf.contains("default_ulimits = []"));
        for line in conf.lines().filter(|l| l.contains("= \"/")) {
            assert!(
                line.contains("\"/var/lib/geartopo-lab/t/nodes/node4/"),
                "{line}"
            );
        }
        let storage = n.render_storage_conf("overlay");
        assert!(storage.contains("driver = \"overlay\""));
        assert!(storage.contains("graphroot = \"/var/lib/geartopo-lab/t/nodes/node4/storage\""));
        assert!(storage.contains("runroot = \"/var/lib/geartopo-lab/t/nodes/node4/run\""));
    }

    #[test]
    fn sshd_listens_on_the_node_only_and_passes_its_podman_env() {
        let l = Layout::new(Path::new("/l"), "t");
        let cfg = l
            .node("node1")
            .render_sshd_config(&node("node1", 1, 22), &l.authorized_keys());
        assert!(cfg.contains("ListenAddress 198.18.0.1:22\n"));
        assert!(cfg.contains("PasswordAuthentication no\n"));
        assert!(cfg.contains("AuthorizedKeysFile /l/t/authorized_keys\n"));
        assert!(cfg.contains("PidFile /l/t/nodes/node1/sshd.pid\n"));
        assert!(cfg.contains(
            "SetEnv SHLVL=1 CONTAINERS_CONF=/l/t/nodes/node1/containers.conf \
             CONTAINERS_STORAGE_CONF=/l/t/nodes/node1/storage.conf GEARTOPO_LAB_NODE=node1 \
             GEARTOPO_RUN_DIR=/l/t/nodes/node1/run-geartopo \
             GEARTOPO_STATE_DIR=/l/t/nodes/node1/state-geartopo \
             GEARTOPO_HOOKS_DIR=/l/t/nodes/node1/hooks.d\n"
        ));
    }

    #[test]
    fn docker_node_sessions_reach_its_own_dockerd_with_the_matching_client() {
        let l = Layout::new(Path::new("/l"), "t");
        let mut n = node("node5", 5, 22);
        n.runtime = Runtime::Docker;
        let cfg = l.node("node5").render_sshd_config(&n, &l.authorized_keys());
        assert!(cfg.contains(
            " DOCKER_HOST=unix:///l/t/nodes/node5/docker.sock \
             PATH=/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin \
             GEARTOPO_DOCKER_CONFIG=/l/t/nodes/node5/daemon.json \
             GEARTOPO_DOCKER_PIDFILE=/l/t/nodes/node5/dockerd.pid\n"
        ));
        // A podman node's sessions keep sshd's own PATH and have no DOCKER_HOST.
        let podman = l
            .node("node1")
            .render_sshd_config(&node("node1", 1, 22), &l.authorized_keys());
        assert!(!podman.contains("DOCKER_HOST") && !podman.contains("PATH="));
        let args = l.node("node5").dockerd_args("overlay").join(" ");
        assert_eq!(
            args,
            "--data-root /l/t/nodes/node5/docker --exec-root /l/t/nodes/node5/dx \
             --pidfile /l/t/nodes/node5/dockerd.pid -H unix:///l/t/nodes/node5/docker.sock \
             --storage-driver overlay2 --config-file /l/t/nodes/node5/daemon.json"
        );
        assert!(l
            .node("node5")
            .dockerd_args("vfs")
            .contains(&"vfs".to_string()));
    }

    #[test]
    fn docker_socket_paths_must_fit_a_unix_socket_address() {
        let root = Path::new(LAB_ROOT);
        assert!(Layout::new(root, "e2e-4194304")
            .node("node5")
            .check_docker_socket_paths()
            .is_ok());
        let long = "n".repeat(40);
        let err = Layout::new(root, &long)
            .node(&long)
            .check_docker_socket_paths()
            .unwrap_err();
        assert!(
            err.contains("more than a unix socket address holds"),
            "{err}"
        );
    }

    #[test]
    fn known_hosts_lines_match_what_ssh_looks_up() {
        let key = "ssh-ed25519 AAAAC3Nza root@machine\n";
        assert_eq!(
            known_hosts_line(&node("a", 1, 22), key),
            "198.18.0.1 ssh-ed25519 AAAAC3Nza\n"
        );
        assert_eq!(
            known_hosts_line(&node("a", 2, 2222), key),
            "[198.18.0.2]:2222 ssh-ed25519 AAAAC3Nza\n"
        );
    }
}

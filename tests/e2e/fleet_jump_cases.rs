//! A node reachable only through a bastion (issue 14): a small lab of its own, in
//! which `lab up` lets SSH into `hidden` from `bastion` only (the topology's
//! `ssh_jump`), driven with the OpenSSH transport, whose ProxyCommand goes
//! through the bastion node as geartopo reaches it.

use std::path::Path;

use crate::ensure;
use crate::harness::{Ctx, Outcome, IMAGE};
use crate::lab_cases::ask_retrying;

const BASTION: (&str, &str) = ("bastion", "198.18.4.1");
const HIDDEN: (&str, &str) = ("hidden", "198.18.4.2");

/// Takes the case's own lab down when dropped (also when the case fails).
struct OwnLab<'a>(&'a Ctx);

impl Drop for OwnLab<'_> {
    fn drop(&mut self) {
        let lab = self.0.lab.display().to_string();
        let _ = self.0.geartopo_here(&["lab", "down", &lab]);
    }
}

/// Plan, apply (a container on the hidden node, linked from one on the bastion:
/// real TCP through the link), a no-op plan and destroy, through the jump host;
/// SSH straight to the hidden node is refused.
pub fn jump_host_plan_apply_destroy(ctx: &Ctx) -> Outcome {
    let name = format!("e2e-jump-{}", ctx.run_id);
    let text = format!(
        "name = \"{name}\"\n\n[defaults]\ntransport = \"openssh\"\nuser = \"root\"\n\n\
         [nodes.{b}]\naddress = \"{ba}\"\n\n[nodes.{h}]\naddress = \"{ha}\"\nssh_jump = \"{b}\"\n\n\
         [containers.web]\nnode = \"{h}\"\nimage = \"{IMAGE}\"\n\
         command = [\"gt-serve\", \"tcp\", \"7531\", \"web\"]\n\
         publish = [{{ port = 7531, host_port = 51531 }}]\n\n\
         [containers.app]\nnode = \"{b}\"\nimage = \"{IMAGE}\"\ncommand = [\"sleep\", \"inf\"]\n\
         links = [{{ to = \"web:7531\" }}]\n",
        b = BASTION.0,
        ba = BASTION.1,
        h = HIDDEN.0,
        ha = HIDDEN.1,
    );
    let lab = ctx.with_own_lab(
        &format!("{name}.toml"),
        &text,
        [BASTION, HIDDEN]
            .iter()
            .map(|(n, a)| (n.to_string(), a.to_string()))
            .collect(),
    );
    let result = run(&lab, &name);
    ctx.take_transcript(&lab);
    result
}

fn run(lab: &Ctx, name: &str) -> Outcome {
    let file = lab.lab.display().to_string();
    lab.geartopo_here(&["lab", "up", &file]).ok()?;
    let _down = OwnLab(lab);
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("images/out/geartopo-busybox.tar");
    lab.geartopo_here(&["lab", "load", &file, &image.display().to_string(), IMAGE])
        .ok()?;

    let direct = lab
        .in_control(&format!(
            "ssh -F /dev/null -o BatchMode=yes -o ConnectTimeout=5 -i \"$GEARTOPO_IDENTITY\" \
             -o UserKnownHostsFile=\"$GEARTOPO_KNOWN_HOSTS\" root@{} true",
            HIDDEN.1
        ))
        .expect(255)?;
    ensure!(
        direct.stderr.contains("Connection refused"),
        "SSH straight to the hidden node was not refused:\n{}",
        direct.describe()
    );

    let control = lab.lab.with_file_name(format!("{name}-cm"));
    let bin = lab.bin.display().to_string();
    let gt = |args: &str| {
        lab.in_control(&format!(
            "GEARTOPO_SSH_CONTROL_DIR={} NO_COLOR=1 {bin} {args}",
            control.display()
        ))
    };
    let result = (|| {
        gt(&format!("plan {file} --detailed-exitcode")).expect(2)?;
        gt(&format!("apply {file} --auto-approve")).ok()?;
        let reply = ask_retrying(
            lab,
            BASTION.0,
            &format!("{name}-app"),
            "tcp",
            "127.0.0.1",
            7531,
        )?;
        ensure!(reply == "web hello", "through the link: {reply:?}");
        gt(&format!("plan {file} --detailed-exitcode")).expect(0)?;
        gt(&format!("destroy {file} --auto-approve")).ok()?;
        ensure!(
            lab.containers_of(HIDDEN.0, name)?.is_empty(),
            "destroy through the jump host left containers"
        );
        Ok(())
    })();
    for (_, address) in [BASTION, HIDDEN] {
        let _ = lab.in_control(&format!(
            "ssh -o ControlPath={}/%C -O exit root@{address}",
            control.display()
        ));
    }
    result
}

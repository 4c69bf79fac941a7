//! Named volumes, bind mounts and container options on real nodes
//! (docs/volumes.md): data written in a named volume survives a replace (the new
//! container mounts the same volume), a read-only bind mount is read-only, the
//! options reach the runtime, `destroy` keeps the volume and `destroy --volumes`
//! removes it. One podman node and the docker node, in one topology.

use crate::ensure;
use crate::harness::{Ctx, Guard, Outcome, IMAGE};

fn body(command: &str, bind_dir: &str) -> String {
    let mut s = String::new();
    for (name, node) in [("pdb", "node1"), ("ddb", "node5")] {
        s.push_str(&format!(
            "[containers.{name}]\nnode = \"{node}\"\nimage = \"{IMAGE}\"\n\
             command = [\"sleep\", \"{command}\"]\n\
             volumes = [{{ name = \"data\", target = \"/data\" }}, {{ source = \"{bind_dir}\", target = \"/conf\", read_only = true }}]\n\
             memory = \"64m\"\nstop_timeout = 1\nlabels = {{ team = \"db\" }}\n\n"
        ));
    }
    s
}

pub fn data_survives_a_replace_and_destroy_keeps_it(ctx: &Ctx) -> Outcome {
    let name = "e2e-vol";
    let bind_dir = "/tmp/geartopo-e2e-vol-conf";
    let file = ctx.topology(name, &body("1000001", bind_dir));
    let _guard = Guard::new(ctx, &file, name);
    for node in ["node1", "node5"] {
        ctx.on_node(
            node,
            &format!("mkdir -p {bind_dir} && echo conf > {bind_dir}/c"),
        )
        .ok()?;
    }
    let first = ctx.apply(&file)?;
    ensure!(
        first
            .stdout
            .contains("\"e2e-vol-pdb.data:/data\", # volume created")
            && first
                .stdout
                .contains("\"e2e-vol-ddb.data:/data\", # volume created"),
        "the plan does not show the volumes being created:\n{}",
        first.describe()
    );
    let nodes = [("node1", "e2e-vol-pdb"), ("node5", "e2e-vol-ddb")];
    for (node, c) in nodes {
        let rt = ctx.runtime(node);
        ctx.on_node(
            node,
            &format!("{rt} exec {c} sh -c 'echo kept-{node} > /data/x'"),
        )
        .ok()?;
        let conf = ctx
            .on_node(node, &format!("{rt} exec {c} cat /conf/c"))
            .ok()?;
        ensure!(
            conf.stdout.trim() == "conf",
            "bind mount: {}",
            conf.describe()
        );
        let write = ctx.on_node(node, &format!("{rt} exec {c} sh -c 'echo x > /conf/c'"));
        ensure!(
            write.code != 0,
            "the read-only bind mount took a write:\n{}",
            write.describe()
        );
        let inspect = ctx
            .on_node(
                node,
                &format!("{rt} inspect -f '{{{{.HostConfig.Memory}}}} {{{{index .Config.Labels \"team\"}}}}' {c}"),
            )
            .ok()?;
        ensure!(
            inspect.stdout.trim() == "67108864 db",
            "options did not reach the runtime: {}",
            inspect.describe()
        );
    }
    let ids: Vec<u32> = nodes
        .iter()
        .map(|(n, c)| ctx.container_pid(n, c))
        .collect::<Result<_, _>>()?;

    // A new command replaces both containers; their data is still there.
    let file = ctx.topology(name, &body("1000002", bind_dir));
    let second = ctx.apply(&file)?;
    ensure!(
        second.stdout.contains("# volume kept"),
        "the replace does not say it keeps the volume:\n{}",
        second.describe()
    );
    for (i, (node, c)) in nodes.iter().enumerate() {
        ensure!(
            ctx.container_pid(node, c)? != ids[i],
            "{c} was not replaced"
        );
        let rt = ctx.runtime(node);
        let data = ctx
            .on_node(node, &format!("{rt} exec {c} cat /data/x"))
            .ok()?;
        ensure!(
            data.stdout.trim() == format!("kept-{node}"),
            "the data did not survive the replace: {}",
            data.describe()
        );
    }
    let plan = ctx.plan(&file);
    ensure!(plan.code == 0, "plan after apply:\n{}", plan.describe());

    // destroy keeps the volumes and says so; --volumes removes them.
    let f = file.display().to_string();
    let destroy = ctx.geartopo(&["destroy", &f, "--auto-approve"]).ok()?;
    ensure!(
        destroy.stdout.contains("Named volumes kept")
            && destroy.stdout.contains("e2e-vol-pdb.data"),
        "destroy does not say it keeps the volumes:\n{}",
        destroy.describe()
    );
    let exists = |node: &str, v: &str| {
        let rt = ctx.runtime(node);
        ctx.on_node(node, &format!("{rt} volume inspect {v} >/dev/null 2>&1"))
            .code
            == 0
    };
    ensure!(
        exists("node1", "e2e-vol-pdb.data") && exists("node5", "e2e-vol-ddb.data"),
        "destroy removed a volume"
    );
    let destroy = ctx
        .geartopo(&["destroy", &f, "--volumes", "--auto-approve"])
        .ok()?;
    ensure!(
        !exists("node1", "e2e-vol-pdb.data") && !exists("node5", "e2e-vol-ddb.data"),
        "destroy --volumes left a volume:\n{}",
        destroy.describe()
    );
    for node in ["node1", "node5"] {
        let _ = ctx.on_node(node, &format!("rm -rf {bind_dir}"));
    }
    Ok(())
}

//! `geartopo import`: reads a geard deployment descriptor, writes a topology.
//! The work is in `crate::import`; this only reads, prints and writes files.
use std::io::Write;
use std::path::PathBuf;

use crate::import::{self, NodeArg, Options};

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// A geard deployment descriptor (JSON), as given to `gear deploy` or written by it.
    pub descriptor: PathBuf,
    /// NAME=ADDRESS, once per node, in geard's host order (`gear deploy FILE HOST...`).
    // Parsed in `run`, so that a bad one is an error with exit code 1 like the rest.
    #[arg(long = "node", required = true, value_name = "NAME=ADDRESS")]
    pub nodes: Vec<String>,
    /// Where to write the topology (default: stdout). Nothing is written on error.
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The topology name ([a-z0-9-], at most 32); default: from the file name.
    #[arg(long)]
    pub name: Option<String>,
}

pub fn run(args: ImportArgs) -> anyhow::Result<i32> {
    let mut nodes = Vec::new();
    for spec in &args.nodes {
        match spec.parse::<NodeArg>() {
            Ok(n) => nodes.push(n),
            Err(e) => {
                errln!("error: --node: {e}; nothing written")?;
                return Ok(1);
            }
        }
    }
    let source = std::fs::read(&args.descriptor)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.descriptor.display()))?;
    let options = Options {
        file_name: args.descriptor.display().to_string(),
        name: args.name,
        nodes,
    };
    let stderr = std::io::stderr();
    match import::import(&source, &options) {
        Ok(imported) => {
            let mut err = stderr.lock();
            for w in &imported.warnings {
                writeln!(err, "{w}")?;
            }
            match &args.output {
                Some(path) => std::fs::write(path, &imported.toml)
                    .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?,
                None => std::io::stdout()
                    .lock()
                    .write_all(imported.toml.as_bytes())?,
            }
            Ok(0)
        }
        Err(failed) => {
            let mut err = stderr.lock();
            for d in &failed.diagnostics {
                writeln!(err, "{d}")?;
            }
            writeln!(
                err,
                "error: {}: {failed}; nothing written",
                args.descriptor.display()
            )?;
            Ok(1)
        }
    }
}

//! `geartopo completions` and `geartopo man`: shell completions and manual pages,
//! generated from the same clap definitions as the parser, so they cannot drift
//! from the flags the binary accepts. Rendering is pure (`completions`,
//! `man_pages`); only `run_*` print or write files.
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;
use clap_complete::Shell;

use super::Cli;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (geartopo.1, geartopo-plan.1, ...).
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub out: PathBuf,
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "geartopo", &mut out);
    out
}

/// Every manual page as (file name, roff text): `geartopo.1`, then one page per
/// visible subcommand, nested ones named like `geartopo-lab-up.1`.
pub fn man_pages() -> std::io::Result<Vec<(String, Vec<u8>)>> {
    fn walk(cmd: clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> std::io::Result<()> {
        let subcommands: Vec<_> = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .cloned()
            .collect();
        // The footer names the program, not the subcommand (`exec 0.1.0`).
        let man = clap_mangen::Man::new(cmd)
            .source(format!("geartopo {}", env!("CARGO_PKG_VERSION")))
            .manual("geartopo manual");
        let mut text = Vec::new();
        man.render(&mut text)?;
        pages.push((man.get_filename(), text));
        for s in subcommands {
            walk(s, pages)?;
        }
        Ok(())
    }
    // Building gives every subcommand its display name (`geartopo-lab-up`).
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    walk(cmd, &mut pages)?;
    Ok(pages)
}

pub fn run_completions(args: CompletionsArgs) -> anyhow::Result<i32> {
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(&completions(args.shell))?;
    Ok(0)
}

pub fn run_man(args: ManArgs) -> anyhow::Result<i32> {
    for (name, text) in man_pages()? {
        let path = args.out.join(&name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        outln!("{}", path.display())?;
    }
    Ok(0)
}

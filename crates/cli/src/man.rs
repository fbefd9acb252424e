//! `softbus man`: the man pages (roff) from the same definitions as `--help`:
//! `softbus.1`, and `softbus-COMMAND.1` for each command.

use std::io::Write;
use std::path::Path;

/// The page of `cmd`, or of its subcommand `sub`, named as man expects
/// (`softbus-node`); `None` if there is no such subcommand.
fn page(cmd: &clap::Command, sub: Option<&str>) -> Option<clap::Command> {
    match sub {
        None => Some(cmd.clone()),
        Some(s) => cmd.find_subcommand(s).map(|c| {
            c.clone()
                .name(format!("softbus-{s}"))
                .display_name(format!("softbus-{s}"))
        }),
    }
}

fn render(c: clap::Command, out: &mut dyn Write) -> std::io::Result<()> {
    clap_mangen::Man::new(c).render(out)
}

/// The names of the commands that get a page of their own.
pub fn commands(cmd: &clap::Command) -> Vec<String> {
    cmd.get_subcommands()
        .filter(|c| c.get_name() != "help")
        .map(|c| c.get_name().to_owned())
        .collect()
}

/// Prints the page of `sub` (or of `softbus`) on stdout.
pub fn print(cmd: &clap::Command, sub: Option<&str>) -> Result<(), String> {
    let Some(c) = page(cmd, sub) else {
        return Err(format!(
            "no command {:?}; the pages are: {}",
            sub.unwrap_or_default(),
            commands(cmd).join(", ")
        ));
    };
    match render(c, &mut std::io::stdout()) {
        // A pager or `head` that stops reading is not a failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the man page: {e}"))
        }
        _ => Ok(()),
    }
}

/// Writes every page into `dir` (made if missing); the files written.
pub fn write_all(cmd: &clap::Command, dir: &Path) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for sub in std::iter::once(None).chain(commands(cmd).into_iter().map(Some)) {
        let c = page(cmd, sub.as_deref()).ok_or("a command vanished")?;
        let path = dir.join(format!("{}.1", c.get_name()));
        let mut f = std::fs::File::create(&path)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        render(c, &mut f).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}

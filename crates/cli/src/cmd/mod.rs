//! One module per subcommand: its `Args` and its `run`.

pub(crate) mod asm;
pub(crate) mod bench;
pub(crate) mod disasm;
pub(crate) mod info;
pub(crate) mod jit_dump;
pub(crate) mod plugin;
pub(crate) mod replay;
pub(crate) mod run;
pub(crate) mod verify;

use crate::error::CliError;
use std::io::Write;

/// Writes `line` and a newline to stdout as [`write_stdout`] does: a reader that stops early
/// (`bpfx info --json | head -c 100`) ends the output quietly instead of panicking as `println!`
/// would.
pub(crate) fn write_line(line: impl std::fmt::Display) -> Result<(), CliError> {
    write_stdout(&format!("{line}\n"))
}

/// Writes `text` to stdout; a reader that stops early (`bpfx ... | head`) is not an error.
pub(crate) fn write_stdout(text: &str) -> Result<(), CliError> {
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Io {
            path: "<stdout>".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}

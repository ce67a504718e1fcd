//! `bpfx asm FILE -o OUT`: assemble text into raw bytecode.

use crate::error::CliError;
use crate::load;
use std::path::PathBuf;

/// Assemble FILE (assembler text, whatever its extension) into raw little-endian bytecode,
/// checking that the result is a valid program (every opcode known, every jump inside it). The
/// dialect is described on the `Asm` command in main.rs (`bpfx asm --help`).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Assembler text to read.
    file: PathBuf,
    /// Where to write the bytecode (8 bytes per instruction slot).
    #[arg(short, long, value_name = "OUT")]
    output: PathBuf,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let prog = load::assemble_file(&args.file)?;
    std::fs::write(&args.output, prog.to_bytes()).map_err(|source| CliError::Io {
        path: args.output.clone(),
        source,
    })
}

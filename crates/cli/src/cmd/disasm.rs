//! `bpfx disasm FILE`: print a program as assembler text.

use crate::error::CliError;
use crate::load;
use bpfx_bytecode::{disassemble, disassemble_with_pcs};
use std::path::PathBuf;

/// Print the program in FILE as assembler text that `bpfx asm` reads back.
///
/// FILE is raw bytecode, unless it ends in `.asm` or `.s` (assembler text) or is an ELF object.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: an ELF object, assembler text (.asm, .s) or raw bytecode; `-` reads it
    /// from standard input.
    file: PathBuf,
    /// ELF section holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// The ELF object's program (function) name: needed when a section holds several.
    #[arg(long, value_name = "NAME")]
    program: Option<String>,
    /// Prefix each line with its pc and show the absolute target of each jump.
    #[arg(long)]
    pcs: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let prog = load::load_program(
        &args.file,
        load::Select::new(args.section.as_ref(), args.program.as_ref()),
    )?;
    let text = if args.pcs {
        disassemble_with_pcs(&prog)
    } else {
        disassemble(&prog)
    };
    crate::cmd::write_stdout(&text)
}

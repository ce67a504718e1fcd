//! `bpfx jit-dump FILE`: print the x86-64 code the JIT generates.

use crate::error::CliError;
use crate::load;
use std::path::PathBuf;

/// Compile a program and print its x86-64 code: each eBPF instruction in assembly syntax,
/// followed by its machine code with offsets and bytes.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: raw bytecode, assembler text (.asm, .s) or an ELF object.
    file: PathBuf,
    /// ELF section holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// Compile in the instruction-budget charge (a program that may not terminate always
    /// gets it, unless --no-budget).
    #[arg(long)]
    budget: bool,
    /// Compile a program whose termination is not proven without the default budget's
    /// charge, as `run --no-budget` does.
    #[arg(long, conflicts_with = "budget")]
    no_budget: bool,
    /// Compile with constant blinding and Spectre v1 masking, as `run --hardened` does.
    #[arg(long)]
    hardened: bool,
    /// Verify first (checked mode, plain memory of N bytes) and compile with the verifier's
    /// proofs, as `run` and `bench` do for an input of that size: proven accesses lose their
    /// guards. Without it every access not on the current frame is guarded.
    #[arg(long, value_name = "N")]
    mem_size: Option<u64>,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let prog = load::load_program(&args.file, args.section.as_deref())?;
    let base = if args.hardened {
        bpfx_jit::JitOptions::hardened()
    } else {
        bpfx_jit::JitOptions::default()
    };
    let opts = bpfx_jit::JitOptions {
        budget: args.budget,
        unbounded: args.no_budget,
        ..base
    };
    let jit = match args.mem_size {
        Some(size) => {
            let verified = crate::cmd::verify::verify_for_run(prog, false, size)?;
            bpfx_jit::compile(&verified, &opts)
        }
        None => bpfx_jit::compile_unverified(&prog, &opts),
    }
    .map_err(|e| CliError::Jit(e.to_string()))?;
    crate::cmd::write_stdout(&jit.listing())
}

//! `bpfx jit-dump FILE`: print the x86-64 code the JIT generates.

use crate::cmd::run::{CtxKind, context, facade_error, program_ref};
use crate::error::CliError;
use crate::load::{self, Loaded};
use std::path::PathBuf;

/// Compile a program and print its x86-64 code: each eBPF instruction in assembly syntax,
/// followed by its machine code with offsets and bytes.
///
/// An ELF object's program is shown as `run` compiles it: verified (checked mode) with the
/// object's maps, the standard helpers and its context (the one its section implies, or
/// --ctx), so an XDP program's context accesses appear converted.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: an ELF object, assembler text (.asm, .s) or raw bytecode; `-` reads it
    /// from standard input.
    file: PathBuf,
    /// ELF section (or program name) holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// The ELF object's program (function) name: needed when a section holds several.
    #[arg(long, value_name = "NAME")]
    program: Option<String>,
    /// An ELF object's program context [default: xdp for programs in `xdp` sections, memory
    /// otherwise].
    #[arg(long, value_enum)]
    ctx: Option<CtxKind>,
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
    /// The size of the input memory `run` would get (its --mem file's length) [default: 0 for
    /// an object]: the verifier proves accesses against it, and the JIT drops the guards of
    /// proven accesses. A bare program is verified only with it (checked mode, no helpers);
    /// without it every access not on the current frame is guarded.
    #[arg(long, value_name = "N")]
    mem_size: Option<u64>,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
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
    let vm = load::vm(None);
    let prog = match load::load_with(
        &vm,
        &args.file,
        load::Select::new(args.section.as_ref(), args.program.as_ref()),
    )? {
        Loaded::Object { obj, program } => {
            let err = |e| facade_error(&args.file, e);
            let ctx = context(&obj, &program, args.ctx);
            let pref = program_ref(&args.file, &obj, &program, ctx, args.mem_size.unwrap_or(0))?;
            let compiled = pref
                .verify(bpfx::Mode::Checked)
                .and_then(|v| v.compile_with(&opts))
                .map_err(err)?;
            let listing = compiled
                .listing()
                .expect("a program compiled by the JIT has a listing");
            return crate::cmd::write_stdout(&listing);
        }
        Loaded::Plain(prog) => prog,
    };
    if args.ctx.is_some() {
        return Err(CliError::Usage(
            "--ctx applies to ELF objects; a bare program gets plain memory".into(),
        ));
    }
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

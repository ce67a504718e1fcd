//! `bpfx verify FILE`: run the verifier and report its verdict.

use crate::cmd::run::CtxKind;
use crate::error::CliError;
use crate::load::{self, Loaded};
use bpfx_bytecode::Program;
use bpfx_verifier::{Config, Mode, VerifiedProgram};
use std::path::PathBuf;

/// Verify a program: accept it, or reject it naming the instruction and the reason.
///
/// Checked mode (the default) rejects only what no run-time guard can make safe; strict mode
/// rejects every program whose memory accesses it cannot prove in bounds.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: raw bytecode, assembler text (.asm, .s) or an ELF object.
    file: PathBuf,
    /// ELF section (or program name) holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// The program's context [default: xdp for programs in `xdp` sections, memory otherwise].
    #[arg(long, value_enum)]
    ctx: Option<CtxKind>,
    /// Reject what cannot be proven safe, instead of leaving run-time guards.
    #[arg(long)]
    strict: bool,
    /// Size in bytes of the input memory the program will be given (r2); unknown when absent.
    #[arg(long, value_name = "N")]
    mem_size: Option<u64>,
    /// Print the abstract state at every instruction the analysis processed.
    #[arg(long)]
    log: bool,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

fn mode(strict: bool) -> Mode {
    if strict { Mode::Strict } else { Mode::Checked }
}

/// Verifies a program about to run on `mem_size` bytes of input, with no helpers.
pub(crate) fn verify_for_run(
    prog: Program,
    strict: bool,
    mem_size: u64,
) -> Result<VerifiedProgram, CliError> {
    let cfg = Config {
        mode: mode(strict),
        mem_size: Some(mem_size),
        ..Config::default()
    };
    bpfx_verifier::verify(prog, &cfg).map_err(CliError::Verify)
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let (result, log, insns) = match load::load(&args.file, args.section.as_deref())? {
        Loaded::Plain(prog) => {
            if args.ctx == Some(CtxKind::Xdp) {
                let obj = bpfx::Vm::new()
                    .object(vec![bpfx::ProgramDef::new("prog", "xdp", prog)], vec![])
                    .map_err(|source| CliError::Object {
                        path: args.file.clone(),
                        source,
                    })?;
                verify_object(args, &obj, "prog")
            } else {
                let cfg = Config {
                    mode: mode(args.strict),
                    mem_size: args.mem_size,
                    ..Config::default()
                };
                let insns = prog.iter().count();
                let (result, log) = bpfx_verifier::verify_with_log(prog, &cfg);
                (result.map_err(CliError::Verify), log, insns)
            }
        }
        Loaded::Object { obj, program } => verify_object(args, &obj, &program),
    };
    if args.log {
        let mut text = log.lines().join("\n");
        text.push('\n');
        if log.truncated() {
            text.push_str("... (log truncated)\n");
        }
        if args.json {
            eprint!("{text}");
        } else {
            crate::cmd::write_stdout(&text)?;
        }
    }
    let mode = if args.strict { "strict" } else { "checked" };
    match result {
        Ok(verified) => {
            let proven = verified
                .program()
                .iter()
                .filter(|(pc, _)| verified.access(*pc).is_some_and(|f| f.proven))
                .count();
            let accesses = verified
                .program()
                .iter()
                .filter(|(pc, _)| verified.access(*pc).is_some())
                .count();
            if args.json {
                let obj = serde_json::json!({
                    "verdict": "accepted",
                    "mode": mode,
                    "instructions": insns,
                    "memory_accesses": accesses,
                    "proven_accesses": proven,
                });
                println!("{obj}");
            } else {
                println!(
                    "accepted ({mode} mode): {insns} instructions, {proven} of {accesses} memory accesses proven in bounds"
                );
            }
            Ok(())
        }
        Err(CliError::Verify(e)) => {
            if args.json {
                let obj = serde_json::json!({
                    "verdict": "rejected",
                    "mode": mode,
                    "pc": e.pc.0,
                    "error": e.to_string(),
                });
                println!("{obj}");
            }
            Err(CliError::Verify(e))
        }
        Err(e) => Err(e),
    }
}

/// Verifies program `name` of `obj` with its maps and helpers, in the context `--ctx` or its
/// section implies.
fn verify_object(
    args: &Args,
    obj: &bpfx::Object,
    name: &str,
) -> (
    Result<VerifiedProgram, CliError>,
    bpfx_verifier::VerifierLog,
    usize,
) {
    let err = |e| crate::cmd::run::facade_error(&args.file, e);
    let pref = match obj.program(name) {
        Ok(p) => p,
        Err(e) => return (Err(err(e)), Default::default(), 0),
    };
    let section = obj
        .programs()
        .find(|p| p.name == name)
        .map(|p| (p.section.to_string(), p.insn_count()));
    let (section, insns) = section.unwrap_or_default();
    let ctx = match args.ctx {
        Some(CtxKind::Memory) => bpfx::Context::Memory,
        Some(CtxKind::Xdp) => bpfx::Context::Xdp,
        None => bpfx::Context::for_section(&section),
    };
    let mut pref = pref.context(ctx);
    if let Some(n) = args.mem_size {
        pref = pref.input_size(n);
    }
    let (res, log) = pref.verify_with_log(mode(args.strict));
    (res.map(|v| v.program().clone()).map_err(err), log, insns)
}

//! `bpfx verify FILE`: run the verifier and report its verdict.

use crate::error::CliError;
use crate::load;
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
    /// ELF section holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
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
    let prog = load::load_program(&args.file, args.section.as_deref())?;
    let cfg = Config {
        mode: mode(args.strict),
        mem_size: args.mem_size,
        ..Config::default()
    };
    let insns = prog.iter().count();
    let (result, log) = bpfx_verifier::verify_with_log(prog, &cfg);
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
        Err(e) => {
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
    }
}

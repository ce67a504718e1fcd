//! `bpfx run FILE`: run a program once and print r0.

use crate::engine::{EngineKind, Prepared, insn_at};
use crate::error::CliError;
use crate::load;
use bpfx_exec::{Env, Helpers};
use std::path::PathBuf;

/// Run a program once on an input memory and print its result (r0).
///
/// The program is verified first (checked mode unless --strict), then run. It gets r1 = a pointer
/// to a writable copy of the --mem file's bytes (0 when there is none) and r2 = its length.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The program: raw bytecode, assembler text (.asm, .s) or an ELF object.
    file: PathBuf,
    /// ELF section holding the program (needed when the object has several).
    #[arg(long, value_name = "NAME")]
    section: Option<String>,
    /// File whose bytes are the program's input memory.
    #[arg(long, value_name = "PATH")]
    mem: Option<PathBuf>,
    /// Engine to run on.
    #[arg(long, value_enum, default_value_t = EngineKind::Jit)]
    engine: EngineKind,
    /// Verify in strict mode: reject any program whose memory accesses cannot be proven safe.
    #[arg(long)]
    strict: bool,
    /// Stop after N executed instructions with a budget-exhausted trap.
    #[arg(long, value_name = "N")]
    budget: Option<u64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let prog = load::load_program(&args.file, args.section.as_deref())?;
    let mut input = match &args.mem {
        Some(path) => std::fs::read(path).map_err(|source| CliError::Io {
            path: path.clone(),
            source,
        })?,
        None => Vec::new(),
    };
    let verified = crate::cmd::verify::verify_for_run(prog, args.strict, input.len() as u64)?;
    let prog = verified.program();
    let prepared = Prepared::new(&verified, args.engine, args.budget.is_some())
        .map_err(|e| CliError::Jit(e.to_string()))?;
    let mut env = Env::with_helpers(Helpers::new());
    env.budget = args.budget;
    let outcome = prepared.run(&mut input, &mut env);
    match outcome {
        Ok(r0) => {
            if args.json {
                let mut obj = serde_json::json!({
                    "result": r0,
                    "engine": args.engine.name(),
                });
                if let Some(left) = env.budget {
                    obj["budget_left"] = left.into();
                }
                println!("{obj}");
            } else {
                println!("{r0} ({r0:#x})");
            }
            Ok(())
        }
        Err(trap) => {
            let insn = insn_at(prog, trap.pc);
            if args.json {
                let obj = serde_json::json!({
                    "engine": args.engine.name(),
                    "trap": {
                        "kind": trap.kind.name(),
                        "pc": trap.pc.0,
                        "insn": insn,
                        "message": trap.kind.to_string(),
                    },
                });
                println!("{obj}");
            }
            Err(CliError::Trap { trap, insn })
        }
    }
}

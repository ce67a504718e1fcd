//! `bpfx conformance-plugin`: the plugin protocol of the upstream bpf_conformance runner.
//!
//! The runner starts one process per test as `plugin [MEM] OPTIONS...`: MEM (present only when
//! the test has memory) is every byte as two hex digits followed by spaces; OPTIONS is the
//! runner's `--plugin_options` split on spaces. The program arrives on stdin in the same hex
//! form. On success the plugin prints r0 in hex and exits 0; on failure it exits non-zero with
//! the message on stderr. Since MEM comes before OPTIONS, `main` moves a leading MEM argument
//! behind the subcommand name before parsing (see `reorder_plugin_args`).

use crate::engine::{EngineKind, Prepared, insn_at};
use crate::error::CliError;
use bpfx_bytecode::Program;
use bpfx_exec::{Env, Helpers};
use std::io::Read;

/// Speak the bpf_conformance runner's plugin protocol: program hex on stdin, r0 in hex on stdout.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The input memory as hex bytes (whitespace between bytes is ignored).
    mem: Option<String>,
    /// Run on the reference interpreter.
    #[arg(long, conflicts_with = "jit")]
    interpret: bool,
    /// Run on the JIT (the default).
    #[arg(long)]
    jit: bool,
}

/// Parses hex bytes, ignoring whitespace and an optional `0x` prefix.
fn parse_hex(what: &str, text: &str) -> Result<Vec<u8>, CliError> {
    let digits: String = text.split_whitespace().collect();
    let digits = digits.strip_prefix("0x").unwrap_or(&digits);
    if !digits.len().is_multiple_of(2) || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CliError::Hex {
            what: what.to_string(),
        });
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("checked hex digits"))
        .collect())
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let engine = if args.interpret {
        EngineKind::Interp
    } else {
        EngineKind::Jit
    };
    let mut text = String::new();
    std::io::stdin()
        .read_to_string(&mut text)
        .map_err(|source| CliError::Io {
            path: "<stdin>".into(),
            source,
        })?;
    let bytes = parse_hex("program on stdin", &text)?;
    let prog = Program::from_bytes(&bytes).map_err(|source| CliError::Decode {
        path: "<stdin>".into(),
        source,
        op: None,
    })?;
    let mut input = match &args.mem {
        Some(m) => parse_hex("memory argument", m)?,
        None => Vec::new(),
    };
    let prepared =
        Prepared::new_unverified(&prog, engine, false).map_err(|e| CliError::Jit(e.to_string()))?;
    let mut env = Env::with_helpers(Helpers::conformance());
    match prepared.run(&mut input, &mut env) {
        Ok(r0) => {
            crate::cmd::write_line(format_args!("{r0:x}"))?;
            Ok(())
        }
        Err(trap) => {
            let access = env.fault.take().map(Box::new);
            Err(CliError::Trap {
                trap,
                insn: insn_at(&prog, trap.pc),
                reason: env
                    .helper_error
                    .take()
                    .map(|e| e.0)
                    .or_else(|| access.as_ref().map(|f| f.to_string())),
                access,
            })
        }
    }
}

/// Moves a leading memory argument behind `conformance-plugin`, so `bpfx MEM conformance-plugin
/// --jit` (the runner's order) parses as `bpfx conformance-plugin MEM --jit`.
pub(crate) fn reorder_plugin_args(mut args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let is_plugin = |a: &std::ffi::OsString| a == "conformance-plugin";
    if args.len() >= 3 && !is_plugin(&args[1]) && is_plugin(&args[2]) {
        let first = args[1].to_string_lossy();
        if !first.starts_with('-') {
            args.swap(1, 2);
        }
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_runner_hex_forms() {
        assert_eq!(
            parse_hex("m", "aa  bb  11  ").unwrap(),
            vec![0xaa, 0xbb, 0x11]
        );
        assert_eq!(parse_hex("m", "b7000000\n").unwrap(), vec![0xb7, 0, 0, 0]);
        assert!(parse_hex("m", "abc").is_err());
        assert!(parse_hex("m", "zz").is_err());
    }

    #[test]
    fn moves_leading_memory_behind_the_subcommand() {
        let v = |s: &[&str]| s.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        assert_eq!(
            reorder_plugin_args(v(&["bpfx", "aa  bb  ", "conformance-plugin", "--jit"])),
            v(&["bpfx", "conformance-plugin", "aa  bb  ", "--jit"])
        );
        assert_eq!(
            reorder_plugin_args(v(&["bpfx", "conformance-plugin", "--jit"])),
            v(&["bpfx", "conformance-plugin", "--jit"])
        );
    }
}

//! `bpfx`, the command line of the bpfx eBPF runtime: the last stage of the pipeline, on top of
//! every library crate.
//!
//! ```text
//! file (.bin raw bytecode | .asm/.s text | ELF object) ──► load::load ──► Program | bpfx::Object
//!                                                                              │
//!              asm, disasm, run, verify, info, jit-dump, bench, replay ◄───────┘
//! ```
//!
//! Each subcommand is one module under `cmd/` with an `Args` struct (clap derive) and a
//! `run(&Args) -> Result<(), CliError>` function; `main` only dispatches and reports. Errors go
//! to stderr as `error: <message>`; the exit code is 1 for bad input and 2 for usage errors
//! (clap's own).
#![forbid(unsafe_code)]

mod cmd;
mod dump;
mod engine;
mod error;
mod fib;
mod load;
mod maps_init;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run, verify, compile and inspect eBPF programs in user space.
#[derive(Debug, Parser)]
#[command(name = "bpfx", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Value of a `__kconfig` extern of ELF objects, as in a kernel `.config`
    /// (`CONFIG_HZ=250`, `CONFIG_BPF_JIT=y`, `LINUX_KERNEL_VERSION=0x060600`); repeatable.
    #[arg(long, global = true, value_name = "NAME=VALUE", value_parser = parse_kconfig)]
    kconfig: Vec<(String, String)>,
    /// Give the map NAME of an ELF object N entries instead of what the object declares (as a
    /// loader sizing its maps before loading does, libbpf's `bpf_map__set_max_entries`);
    /// repeatable.
    #[arg(long, global = true, value_name = "NAME=N", value_parser = parse_max_entries)]
    max_entries: Vec<(String, u32)>,
    /// Give the map of maps OUTER of an ELF object the inner map template
    /// TYPE:KEY:VALUE:MAX[:FLAGS] (a map type as `bpfx info` names it, key and value sizes in
    /// bytes, entries, map flags in C syntax; e.g. `hash:4:4:1024`, `lpm_trie:8:4:256:0x1`), as a loader does for a map of maps declared the legacy way, which
    /// names none (libbpf's `bpf_map__set_inner_map_fd`); repeatable.
    #[arg(long, global = true, value_name = "OUTER=TYPE:KEY:VALUE:MAX[:FLAGS]", value_parser = parse_inner_map)]
    inner_map: Vec<(String, bpfx::MapSpec)>,
}

/// `OUTER=TYPE:KEY:VALUE:MAX[:FLAGS]`, split at the last `=`; TYPE a map type's name as
/// `bpfx info` prints it (`hash`, `array`, `lru_hash`, …), FLAGS decimal or `0x` hexadecimal.
fn parse_inner_map(s: &str) -> Result<(String, bpfx::MapSpec), String> {
    let usage = || {
        format!(
            "expected OUTER=TYPE:KEY:VALUE:MAX[:FLAGS] (e.g. flows_ref=hash:4:8:1024), got {s:?}"
        )
    };
    let (outer, shape) = s
        .rsplit_once('=')
        .filter(|(o, _)| !o.is_empty())
        .ok_or_else(usage)?;
    let parts: Vec<&str> = shape.split(':').collect();
    let (ty, key, value, max, flags) = match parts[..] {
        [ty, key, value, max] => (ty, key, value, max, "0"),
        [ty, key, value, max, flags] => (ty, key, value, max, flags),
        _ => return Err(usage()),
    };
    let kind = (0..64)
        .filter_map(bpfx::MapKind::from_kernel)
        .find(|k| k.name() == ty)
        .ok_or_else(|| format!("{s:?}: `{ty}` is not a map type bpfx implements"))?;
    let num = |v: &str| v.parse::<u32>().map_err(|_| usage());
    let flags = match flags.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).map_err(|_| usage())?,
        None => num(flags)?,
    };
    let mut spec = bpfx::MapSpec::new(
        format!("{outer}.inner"),
        kind,
        num(key)?,
        num(value)?,
        num(max)?,
    );
    spec.flags = flags;
    Ok((outer.to_string(), spec))
}

/// `NAME=N`, split at the last `=` (map names have none), N a count of entries.
fn parse_max_entries(s: &str) -> Result<(String, u32), String> {
    match s.rsplit_once('=') {
        Some((name, n)) if !name.is_empty() => n
            .parse::<u32>()
            .map(|n| (name.to_string(), n))
            .map_err(|_| format!("expected NAME=N with N a number of entries, got {s:?}")),
        _ => Err(format!("expected NAME=N, got {s:?}")),
    }
}

/// `NAME=VALUE`, split at the first `=`.
fn parse_kconfig(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((name, value)) if !name.is_empty() && !value.is_empty() => {
            Ok((name.to_string(), value.to_string()))
        }
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Assemble text into raw little-endian bytecode.
    ///
    /// The dialect is the bpf_conformance suite's, widened to read back everything `bpfx
    /// disasm` prints (not the LLVM/kernel verifier-log syntax `r0 = 1`): one instruction per
    /// line, `mnemonic operands` as in `mov r0, 1`, `ldxw r2, [r1+4]`, `stxdw [r10-8], r1`,
    /// `jeq r1, 0, +3` or `jeq r1, 0, label`, `lddw r1, 0x1122334455667788`, `call 1`, `exit`;
    /// registers `r0`..`r10` with or without `%`; immediates in decimal or `0x` hex; a label
    /// `name:` on its own line; `#` or `;` starts a comment. The result is checked to be a
    /// valid program (every opcode known, every jump inside it).
    Asm(cmd::asm::Args),
    /// Print a program as assembler text, one instruction per line.
    Disasm(cmd::disasm::Args),
    /// Run a program once and print its result (r0).
    Run(cmd::run::Args),
    /// Verify a program: accept it, or reject it naming the instruction and the reason.
    Verify(cmd::verify::Args),
    /// Describe an ELF object: its programs, maps and instruction counts.
    Info(cmd::info::Args),
    /// Compile a program and print the x86-64 code beside each eBPF instruction.
    JitDump(cmd::jit_dump::Args),
    /// Run a program repeatedly, loaded as `run` loads it (its options, maps, helpers, context,
    /// --mem or --packet); print its result, verify and compile times and time per run.
    Bench(cmd::bench::Args),
    /// Replay a packet capture (pcap, pcapng) through an XDP or TC program: verdict counts,
    /// packets per second, time per packet, the maps, and the packets that pass to --out.
    Replay(cmd::replay::Args),
    /// Act as a plugin of the bpf_conformance runner (program hex on stdin, r0 in hex out).
    ConformancePlugin(cmd::plugin::Args),
}

impl Command {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Command::Run(args) => args.json(),
            Command::Bench(args) => args.json(),
            Command::Verify(args) => args.json(),
            Command::Info(args) => args.json(),
            Command::Replay(args) => args.json(),
            Command::Asm(_)
            | Command::Disasm(_)
            | Command::JitDump(_)
            | Command::ConformancePlugin(_) => false,
        }
    }
}

/// Exit code for usage errors (clap's own, and the option combinations it cannot check).
const EXIT_USAGE: u8 = 2;

fn main() -> ExitCode {
    let argv = cmd::plugin::reorder_plugin_args(std::env::args_os().collect());
    let json = argv.iter().any(|a| a == "--json");
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) if json && e.use_stderr() => {
            // One JSON object on stdout for a usage error too; clap's text on stderr.
            let text = e.render().to_string();
            let message = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string();
            let _ = cmd::write_line(serde_json::json!({
                "schema": error::JSON_SCHEMA,
                "ok": false,
                "error": { "kind": "usage", "message": message },
            }));
            eprint!("{text}");
            return ExitCode::from(EXIT_USAGE);
        }
        Err(e) => e.exit(),
    };
    load::set_object_options(load::ObjectOptions {
        kconfig: cli.kconfig.clone(),
        max_entries: cli.max_entries.clone(),
        inner_map: cli.inner_map.clone(),
    });
    let result = match &cli.command {
        Command::Asm(args) => cmd::asm::run(args),
        Command::Disasm(args) => cmd::disasm::run(args),
        Command::Run(args) => cmd::run::run(args),
        Command::Verify(args) => cmd::verify::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::JitDump(args) => cmd::jit_dump::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::ConformancePlugin(args) => cmd::plugin::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if cli.command.json() {
                let _ = cmd::write_line(e.to_json());
            }
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

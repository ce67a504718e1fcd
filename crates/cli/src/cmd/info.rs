//! `bpfx info FILE`: what an ELF object holds — programs, maps, license.

use crate::error::CliError;
use crate::load;
use std::fmt::Write;
use std::path::PathBuf;

/// Describe an ELF object: its programs (section, context, instruction count) and its maps
/// (kind, key and value sizes, capacity).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The ELF object.
    file: PathBuf,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let obj = load::load_object(&args.file)?;
    if args.json {
        let programs: Vec<_> = obj
            .programs()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "section": p.section,
                    "context": p.context().name(),
                    "instructions": p.insn_count(),
                })
            })
            .collect();
        let maps: Vec<_> = obj
            .maps()
            .map(|m| {
                serde_json::json!({
                    "name": m.name(),
                    "kind": m.kind().name(),
                    "key_size": m.key_size(),
                    "value_size": m.value_size(),
                    "max_entries": m.max_entries(),
                    "read_only": m.read_only(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "programs": programs,
            "maps": maps,
            "license": obj.license(),
        });
        println!("{out}");
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(s, "programs:");
    for p in obj.programs() {
        let _ = writeln!(
            s,
            "  {} (section {}, {} context): {} instructions",
            p.name,
            p.section,
            p.context().name(),
            p.insn_count()
        );
    }
    let _ = writeln!(s, "maps:");
    for m in obj.maps() {
        let ro = if m.read_only() { ", read-only" } else { "" };
        let _ = writeln!(
            s,
            "  {} ({}, key {} B, value {} B, max {}{ro})",
            m.name(),
            m.kind(),
            m.key_size(),
            m.value_size(),
            m.max_entries()
        );
    }
    if let Some(l) = obj.license() {
        let _ = writeln!(s, "license: {l}");
    }
    crate::cmd::write_stdout(&s)
}

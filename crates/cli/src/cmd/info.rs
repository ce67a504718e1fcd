//! `bpfx info FILE`: what an ELF object holds — programs, maps, license.

use crate::error::CliError;
use crate::load;
use std::fmt::Write;
use std::path::PathBuf;

/// Describe an ELF object: its programs (section, context, instruction count), its maps
/// (kind, key and value sizes, capacity, pinning) and its extern symbols.
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
    // What only the loader reports (pinning, externs): the object parsed once more, which
    // cannot fail where loading succeeded.
    let elf = std::fs::read(&args.file)
        .ok()
        .and_then(|b| bpfx_elf::parse(&b).ok());
    let pinning = |name: &str| {
        elf.as_ref()
            .and_then(|o| o.map(name))
            .map_or(0, |m| m.pinning)
    };
    let externs: Vec<(String, &'static str, bool)> = elf
        .as_ref()
        .map(|o| {
            o.externs
                .iter()
                .map(|e| (e.name.clone(), extern_kind(e.kind), e.weak))
                .collect()
        })
        .unwrap_or_default();
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
                    "pinning": pinning(m.name()),
                })
            })
            .collect();
        let externs: Vec<_> = externs
            .iter()
            .map(|(name, kind, weak)| serde_json::json!({"name": name, "kind": kind, "weak": weak}))
            .collect();
        let out = serde_json::json!({
            "programs": programs,
            "maps": maps,
            "externs": externs,
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
        let pin = match pinning(m.name()) {
            0 => String::new(),
            n => format!(", pinning {n} (not applied)"),
        };
        let _ = writeln!(
            s,
            "  {} ({}, key {} B, value {} B, max {}{ro}{pin})",
            m.name(),
            m.kind(),
            m.key_size(),
            m.value_size(),
            m.max_entries()
        );
    }
    if !externs.is_empty() {
        let _ = writeln!(s, "externs:");
        for (name, kind, weak) in &externs {
            let weak = if *weak { ", weak" } else { "" };
            let _ = writeln!(s, "  {name} ({kind}{weak})");
        }
    }
    if let Some(l) = obj.license() {
        let _ = writeln!(s, "license: {l}");
    }
    crate::cmd::write_stdout(&s)
}

/// How `info` names an extern's kind.
fn extern_kind(kind: bpfx_elf::ExternKind) -> &'static str {
    match kind {
        bpfx_elf::ExternKind::Kconfig { .. } => "kconfig",
        bpfx_elf::ExternKind::KsymVar => "ksym variable",
        bpfx_elf::ExternKind::KsymFunc => "ksym function",
        bpfx_elf::ExternKind::Unresolved => "unresolved",
    }
}

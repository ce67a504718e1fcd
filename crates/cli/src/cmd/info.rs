//! `bpfx info FILE`: what an ELF object holds — programs, maps, license — and what of it bpfx
//! can run. Creates no map: it reads the declarations only.

use crate::error::CliError;
use crate::load;
use bpfx::{Error, Object, ObjectMap};
use std::fmt::Write;
use std::path::PathBuf;

/// Describe an ELF object: its programs (section, context and what chose it — the section, or
/// where the section names no type the struct its BTF gives the first parameter —, instruction
/// count, whether bpfx can prepare them), its maps (type, key and value sizes, capacity, pinning, the memory bpfx would
/// take for each, or why it cannot create it) and its extern symbols.
///
/// Nothing is created: each map's memory is the most it would take, full; the total compared
/// with the memory limit (--mem-limit) is what creating them all charges once a program that
/// names them is prepared to run (hash maps and LPM tries: their fixed part, their slots being
/// charged as they are first used).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The ELF object.
    file: PathBuf,
    /// The memory limit the needs are compared with, in bytes (suffixes K, M, G: powers of
    /// 1024) [default: 1G].
    #[arg(long, value_name = "BYTES", value_parser = load::parse_bytes)]
    mem_limit: Option<u64>,
    /// Print exactly one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

/// Why program `name` cannot be prepared, if it cannot (its type, externs and maps; not the
/// verifier's verdict).
fn program_problem(obj: &Object, name: &str) -> Option<String> {
    match obj.program_status(name) {
        Ok(()) => None,
        Err(Error::MapUnsupported { map, reason, .. }) => Some(format!("map `{map}`: {reason}")),
        Err(Error::Link {
            pc, insn, reason, ..
        }) => Some(format!("{pc}: {insn}: {reason}")),
        Err(Error::UnsupportedProgramType { prog_type, .. }) => {
            Some(format!("{prog_type} programs are not run by bpfx"))
        }
        Err(e) => Some(e.to_string()),
    }
}

/// Why bpfx cannot create a map, if it cannot.
fn map_problem(m: &ObjectMap) -> Option<&str> {
    m.status().err()
}

impl Args {
    /// Whether --json was given.
    pub(crate) fn json(&self) -> bool {
        self.json
    }
}

pub(crate) fn run(args: &Args) -> Result<(), CliError> {
    let vm = load::vm(args.mem_limit);
    let obj = load::load_object(&vm, &args.file)?;
    let limit = args.mem_limit.unwrap_or(bpfx::DEFAULT_MEM_LIMIT);
    let total: u64 = obj.maps().filter_map(|m| m.creation_bytes()).sum();
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
                let mut j = serde_json::json!({
                    "name": p.name,
                    "section": p.section,
                    "context": p.context().name(),
                    "context_source": p.context_source().name(),
                    "ctx_type": p.ctx_type,
                    "instructions": p.insn_count(),
                    "status": "supported",
                });
                if let Some(why) = program_problem(&obj, p.name) {
                    j["status"] = "unsupported".into();
                    j["reason"] = why.into();
                }
                j
            })
            .collect();
        let maps: Vec<_> = obj
            .maps()
            .map(|m| {
                let mut j = serde_json::json!({
                    "name": m.name(),
                    "kind": m.type_name(),
                    "type": m.kernel_type(),
                    "key_size": m.key_size(),
                    "value_size": m.value_size(),
                    "max_entries": m.max_entries(),
                    "read_only": m.read_only(),
                    "pinning": pinning(m.name()),
                    "memory_bytes": m.status().ok(),
                    "status": "supported",
                });
                if let Some(why) = map_problem(m) {
                    j["status"] = "unsupported".into();
                    j["reason"] = why.into();
                }
                j
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
            "memory": { "maps_bytes": total, "limit_bytes": limit },
        });
        crate::cmd::write_line(crate::error::json_ok(out))?;
        return Ok(());
    }
    let mut s = String::new();
    let _ = writeln!(s, "programs:");
    for p in obj.programs() {
        let why = program_problem(&obj, p.name)
            .map(|w| format!("; unsupported: {w}"))
            .unwrap_or_default();
        let from = match (p.context_source(), p.ctx_type) {
            (bpfx::ContextSource::Btf, Some(t)) => format!(" from BTF struct {t}"),
            (bpfx::ContextSource::Object, _) => " from the object's other programs".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "  {} (section {}, {} context{from}): {} instructions{why}",
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
        let tail = match m.status() {
            Ok(bytes) => format!(", {bytes} B of memory)"),
            Err(why) => format!("): unsupported: {why}"),
        };
        let _ = writeln!(
            s,
            "  {} ({}, key {} B, value {} B, max {}{ro}{pin}{tail}",
            m.name(),
            m.type_name(),
            m.key_size(),
            m.value_size(),
            m.max_entries()
        );
    }
    let _ = writeln!(
        s,
        "memory: {total} B for all maps, limit {limit} B{}",
        if total > limit { " (exceeded)" } else { "" }
    );
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

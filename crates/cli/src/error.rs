//! The CLI's error type: every way an input can be bad, each naming the file, and the pc and
//! instruction where there is one.

use bpfx_bytecode::{AsmError, DecodeError, Op};
use bpfx_exec::{AccessFault, Trap};
use std::path::PathBuf;
use thiserror::Error;

/// Why a command failed on its input (exit code 1).
#[derive(Debug, Error)]
pub(crate) enum CliError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// An assembler file that is not UTF-8.
    #[error("{}: not UTF-8 text", path.display())]
    NotText { path: PathBuf },
    /// Assembler text with an error (the line and token are in `source`).
    #[error("{}: {source}", path.display())]
    Asm { path: PathBuf, source: AsmError },
    /// Bytecode that does not decode into a valid program. `op` is the instruction at the pc
    /// when it decodes by itself (the error is then about its jump target), shown in assembly.
    #[error("{}: {}", path.display(), describe(source, op.as_ref()))]
    Decode {
        path: PathBuf,
        source: DecodeError,
        op: Option<Op>,
    },
    /// A file that starts as an ELF object but whose ELF structure is broken: cut short
    /// (`truncated`, the reason saying where), or inconsistent.
    #[error(
        "{}: {} ELF object: {reason}",
        path.display(), if *truncated { "truncated" } else { "malformed" }
    )]
    Elf {
        path: PathBuf,
        reason: String,
        truncated: bool,
    },
    /// A text file that is not assembler text by its name: C source, a README...
    #[error(
        "{}: this looks like {looks}, not a program; bpfx takes an ELF object (compile C with \
         `clang -O2 -target bpf -c prog.c -o prog.o`), raw little-endian bytecode (8 bytes per \
         instruction, for example a .bin file) or assembler text in a .asm or .s file",
        path.display()
    )]
    NotAProgram { path: PathBuf, looks: String },
    /// An ELF object that does not load: the message names the section, symbol, map or
    /// relocation at fault.
    #[error("{}: {source}", path.display())]
    Load {
        path: PathBuf,
        source: Box<bpfx_elf::ElfError>,
    },
    /// An object's program or map that cannot be prepared; the message names which.
    #[error("{}: {source}{}", path.display(), object_hint(source))]
    Object { path: PathBuf, source: bpfx::Error },
    /// A command that needs an ELF object was given another file.
    #[error("{}: not an ELF object", path.display())]
    NotElf { path: PathBuf },
    /// `--ctx xdp` without `--packet`, or another inconsistent set of options.
    #[error("{0}")]
    Usage(String),
    /// An ELF object for another machine.
    #[error("{}: not a BPF object (architecture {arch})", path.display())]
    NotBpf { path: PathBuf, arch: String },
    /// An ELF object without code.
    #[error("{}: no executable section with code", path.display())]
    NoProgram { path: PathBuf },
    /// Several programs and neither `--program` nor `--section`.
    #[error(
        "{}: {} programs, choose one with --program NAME (or --section NAME): {}",
        path.display(), programs.len(), programs.join(", ")
    )]
    AmbiguousSection {
        path: PathBuf,
        /// Each program as `name (section s)`.
        programs: Vec<String>,
    },
    /// `--section` names a section holding several programs, and no `--program`.
    #[error(
        "{}: section `{section}` holds {} programs, choose one with --program NAME: {}",
        path.display(), programs.len(), programs.join(", ")
    )]
    AmbiguousProgram {
        path: PathBuf,
        section: String,
        programs: Vec<String>,
    },
    /// `--program` names no program (of `--section`, when given).
    #[error(
        "{}: no program named `{name}`{}; programs: {}",
        path.display(),
        section.as_ref().map(|s| format!(" in section `{s}`")).unwrap_or_default(),
        list_or_none(programs)
    )]
    NoSuchProgram {
        path: PathBuf,
        name: String,
        section: Option<String>,
        /// Each program as `name (section s)`.
        programs: Vec<String>,
    },
    /// `--section` names no section (or program) of the object.
    #[error(
        "{}: no section named `{name}`; sections with programs: {}",
        path.display(), list_or_none(sections)
    )]
    NoSuchSection {
        path: PathBuf,
        name: String,
        sections: Vec<String>,
    },
    /// The JIT could not compile the program (an internal limit or a host failure).
    #[error("JIT compilation failed: {0}")]
    Jit(String),
    /// The verifier rejected the program. A rejection for want of the input's size says how
    /// to give it.
    #[error("verifier rejected the program: {0}{hint}", hint = verify_hint(.0))]
    Verify(bpfx_verifier::VerifyError),
    /// The program ran and faulted.
    #[error("trap at {}: {}: {}", trap.pc, insn, trap_message(trap, reason))]
    Trap {
        trap: Trap,
        insn: String,
        /// A failing helper's own message, or an out-of-bounds access's detail as text.
        reason: Option<String>,
        /// For an out-of-bounds load, store or atomic: the address, size and regions.
        access: Option<Box<AccessFault>>,
    },
    /// Hex text that does not parse.
    #[error("{what}: expected hex bytes")]
    Hex { what: String },
    /// A failure whose JSON output carries more than the error: a trap's partial results (the
    /// engine, the maps), a rejection's verdict. Shown as `source`.
    #[error("{source}")]
    Detailed {
        source: Box<CliError>,
        /// Fields added to the failure's JSON object.
        json: serde_json::Value,
    },
    /// `--section` or `--program` given for a file that is not an ELF object.
    #[error("{}: --section and --program apply only to ELF objects", path.display())]
    SectionNotElf { path: PathBuf },
    /// A packet capture (pcap or pcapng) that cannot be replayed: truncated, malformed, or of
    /// a link type the program cannot see; `packet` is the 1-based number of the packet at
    /// fault, when the fault is in one.
    #[error(
        "{}: {}{reason}",
        path.display(),
        packet.map(|n| format!("packet {n}: ")).unwrap_or_default()
    )]
    Capture {
        path: PathBuf,
        packet: Option<u64>,
        reason: String,
    },
    /// A `--maps` file that cannot be applied: not JSON, or an entry naming no map, of the
    /// wrong size, or refused by the map; `entry` counts a map's entries from 0.
    #[error(
        "{}: {}{}{reason}",
        path.display(),
        map.as_ref().map(|m| format!("map `{m}`: ")).unwrap_or_default(),
        entry.map(|i| format!("entry {i}: ")).unwrap_or_default()
    )]
    MapsInit {
        path: PathBuf,
        map: Option<String>,
        entry: Option<usize>,
        reason: String,
    },
    /// A `--fib` file that does not describe a forwarding table.
    #[error("{}: {reason}", path.display())]
    Fib { path: PathBuf, reason: String },
    /// A failure while running the program on packet `packet` (1-based) of a capture.
    #[error("packet {packet}: {source}")]
    AtPacket { packet: u64, source: Box<CliError> },
}

/// The version of the JSON documents `--json` prints (docs/cli.md).
pub(crate) const JSON_SCHEMA: u64 = 1;

impl CliError {
    /// Wraps `self` with fields for its JSON output.
    pub(crate) fn detailed(self, json: serde_json::Value) -> CliError {
        CliError::Detailed {
            source: Box::new(self),
            json,
        }
    }

    /// The error's kind in JSON output (docs/cli.md lists them).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            CliError::Io { .. } => "io",
            CliError::NotText { .. } | CliError::Asm { .. } => "asm",
            CliError::Decode { .. } => "decode",
            CliError::NotAProgram { .. } => "not_a_program",
            CliError::Elf { .. }
            | CliError::Load { .. }
            | CliError::NotElf { .. }
            | CliError::NotBpf { .. }
            | CliError::NoProgram { .. } => "elf",
            CliError::Object { .. } => "object",
            CliError::Usage(_)
            | CliError::AmbiguousSection { .. }
            | CliError::AmbiguousProgram { .. }
            | CliError::NoSuchProgram { .. }
            | CliError::NoSuchSection { .. }
            | CliError::SectionNotElf { .. } => "usage",
            CliError::Jit(_) => "jit",
            CliError::Verify(_) => "verify",
            CliError::Trap { .. } => "trap",
            CliError::Hex { .. } => "hex",
            CliError::Capture { .. } => "capture",
            CliError::MapsInit { .. } => "maps_init",
            CliError::Fib { .. } => "fib",
            CliError::Detailed { source, .. } | CliError::AtPacket { source, .. } => source.kind(),
        }
    }

    /// The pc the error is at, when there is one.
    pub(crate) fn pc(&self) -> Option<u64> {
        match self {
            CliError::Decode { source, .. } => Some(u64::from(source.pc)),
            CliError::Verify(e) => Some(u64::from(e.pc.0)),
            CliError::Trap { trap, .. } => Some(u64::from(trap.pc.0)),
            CliError::Detailed { source, .. } | CliError::AtPacket { source, .. } => source.pc(),
            _ => None,
        }
    }

    /// The process exit code: 2 for a usage error (options missing, conflicting or naming
    /// nothing), 1 for bad input, a rejection or a trap.
    pub(crate) fn exit_code(&self) -> u8 {
        if self.kind() == "usage" { 2 } else { 1 }
    }

    /// The one JSON object `--json` prints for this failure:
    /// `{"schema": 1, "ok": false, "error": {"kind", "message", "pc"?, "insn"?}, ...}`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut error = serde_json::json!({
            "kind": self.kind(),
            "message": self.to_string(),
        });
        if let Some(pc) = self.pc() {
            error["pc"] = pc.into();
        }
        let mut out = serde_json::json!({});
        let mut inner = self;
        while let CliError::Detailed { source, json } = inner {
            if let Some(fields) = json.as_object() {
                for (k, v) in fields {
                    out[k] = v.clone();
                }
            }
            inner = source;
        }
        if let CliError::AtPacket { packet, source } = inner {
            error["packet"] = (*packet).into();
            inner = source;
        }
        if let CliError::Capture {
            packet: Some(n), ..
        } = inner
        {
            error["packet"] = (*n).into();
        }
        if let CliError::MapsInit { map, entry, .. } = inner {
            if let Some(m) = map {
                error["map"] = m.as_str().into();
            }
            if let Some(i) = entry {
                error["entry"] = (*i).into();
            }
        }
        if let CliError::Trap { insn, access, .. } = inner {
            error["insn"] = insn.as_str().into();
            if let Some(f) = access {
                error["access"] = access_json(f);
            }
        }
        out["schema"] = JSON_SCHEMA.into();
        out["ok"] = false.into();
        out["error"] = error;
        out
    }
}

/// `value` as a successful command's JSON output: with `"schema": 1` and `"ok": true`.
pub(crate) fn json_ok(mut value: serde_json::Value) -> serde_json::Value {
    value["schema"] = JSON_SCHEMA.into();
    value["ok"] = true.into();
    value
}

/// A u64 as JSON both ways: the number, and its decimal string under `<key>_str` (exact for
/// readers whose numbers are doubles).
pub(crate) fn set_u64(obj: &mut serde_json::Value, key: &str, v: u64) {
    obj[key] = v.into();
    obj[format!("{key}_str").as_str()] = v.to_string().into();
}

fn describe(e: &DecodeError, op: Option<&Op>) -> String {
    match op {
        Some(op) => format!("insn #{}: {op}: {}", e.pc, e.kind),
        None => e.to_string(),
    }
}

/// What to add to an object's error the command line can avoid: a map over the memory limit,
/// directly or in a program a program array's slot loads.
fn object_hint(e: &bpfx::Error) -> &'static str {
    let over_limit = match e {
        bpfx::Error::MemoryLimit { .. } => true,
        bpfx::Error::ProgArray { reason, .. } => reason.contains("-byte memory limit are left"),
        _ => false,
    };
    if over_limit {
        " (raise the limit with --mem-limit SIZE, or size maps down with --max-entries NAME=N)"
    } else {
        ""
    }
}

/// What to add to a rejection the command line can avoid.
fn verify_hint(e: &bpfx_verifier::VerifyError) -> &'static str {
    match e.kind {
        bpfx_verifier::VerifyErrorKind::InputSizeUnknown => " (give its size with --mem-size N)",
        _ => "",
    }
}

fn list_or_none(sections: &[String]) -> String {
    if sections.is_empty() {
        "none".to_string()
    } else {
        sections.join(", ")
    }
}

/// An out-of-bounds access in JSON: `{"addr", "addr_str", "size", "write", "regions": [{"kind",
/// "start", "start_str", "len", "writable"}]}`, the regions in the order they were checked.
pub(crate) fn access_json(f: &AccessFault) -> serde_json::Value {
    let regions: Vec<serde_json::Value> = f
        .regions
        .iter()
        .map(|r| {
            let mut region = serde_json::json!({
                "kind": r.kind.name(),
                "len": r.len,
                "writable": !matches!(r.kind, bpfx_exec::RegionKind::Shared { writable: false }),
            });
            set_u64(&mut region, "start", r.start);
            region
        })
        .collect();
    let mut out = serde_json::json!({
        "size": f.size,
        "write": f.write,
        "regions": regions,
    });
    set_u64(&mut out, "addr", f.addr);
    out
}

/// A trap as run's JSON keeps it: `{"kind", "pc", "insn", "message"}`, and `access` for an
/// out-of-bounds load, store or atomic.
pub(crate) fn trap_json(
    trap: &Trap,
    insn: &str,
    reason: &Option<String>,
    access: &Option<Box<AccessFault>>,
) -> serde_json::Value {
    let mut out = serde_json::json!({
        "kind": trap.kind.name(),
        "pc": trap.pc.0,
        "insn": insn,
        "message": trap_message(trap, reason),
    });
    if let Some(f) = access {
        out["access"] = access_json(f);
    }
    out
}

/// The trap's kind, and for a failing helper its own message: `helper call failed (why)`.
pub(crate) fn trap_message(trap: &Trap, reason: &Option<String>) -> String {
    match reason {
        Some(r) => format!("{} ({r})", trap.kind),
        None => trap.kind.to_string(),
    }
}

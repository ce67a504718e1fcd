//! The shared program loader: turns a file into a validated [`Program`], whatever its format,
//! for every subcommand that takes a program; ELF objects also come back whole, as a
//! [`bpfx::Object`] with its maps, for the commands that run or verify them as the kernel would.
//!
//! - ELF objects, recognized by their `\x7fELF` magic whatever their name, loaded by the
//!   `bpfx` facade (relocations applied, subprograms linked, maps and global data declared but
//!   not created: a map's storage exists only once a program that names it is prepared to run):
//!   one program, chosen with `--program NAME` (its function name) or `--section NAME` (a
//!   section holding one program, or a program name) when there are several.
//! - `.asm` and `.s` files: assembler text; `-` (standard input) when it is text.
//! - any other file that is not text: raw little-endian bytecode, 8 bytes per slot.
//! - any other text file (C source, a README, assembler text under another name): an error
//!   saying what it looks like and what bpfx accepts.

use crate::error::CliError;
use bpfx::MapKind;
use bpfx_bytecode::{INSN_SIZE, Insn, Op, Program, assemble, decode_one};
use std::path::Path;

const ELF_MAGIC: &[u8] = b"\x7fELF";

/// A loaded file: a bare program, or an object with the program chosen from it.
pub(crate) enum Loaded {
    /// Bytecode or assembler text.
    Plain(Program),
    /// An ELF object and the name of the chosen program.
    Object {
        /// The object (maps declared, none created).
        obj: bpfx::Object,
        /// The chosen program's name.
        program: String,
    },
}

impl Loaded {
    /// The chosen program's bytecode (for an object: linked, map references not yet bound).
    pub(crate) fn program(&self) -> Program {
        match self {
            Loaded::Plain(p) => p.clone(),
            Loaded::Object { obj, program } => obj
                .programs()
                .find(|p| p.name == program)
                .map(|p| p.program.clone())
                .expect("the chosen program is one of the object's"),
        }
    }
}

/// Which program of an ELF object: `--section NAME` and `--program NAME`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Select<'a> {
    /// `--section`: a section (or, when no section has that name, a program name).
    pub(crate) section: Option<&'a str>,
    /// `--program`: a program (function) name.
    pub(crate) program: Option<&'a str>,
}

impl<'a> Select<'a> {
    /// `--section` and `--program` as given.
    pub(crate) fn new(section: Option<&'a String>, program: Option<&'a String>) -> Select<'a> {
        Select {
            section: section.map(String::as_str),
            program: program.map(String::as_str),
        }
    }
}

/// Loads and validates the program in `path`; `select` picks the program of an ELF object.
pub(crate) fn load_program(path: &Path, select: Select<'_>) -> Result<Program, CliError> {
    Ok(load_with(&bpfx::Vm::new(), path, select)?.program())
}

/// Loads `path`, keeping an ELF object whole, opened by `vm` (its helpers, its memory limit).
pub(crate) fn load_with(
    vm: &bpfx::Vm,
    path: &Path,
    select: Select<'_>,
) -> Result<Loaded, CliError> {
    let bytes = read(path)?;
    if bytes.starts_with(ELF_MAGIC) {
        let obj = open_object(vm, path, &bytes)?;
        let program = choose(path, &obj, select)?;
        return Ok(Loaded::Object { obj, program });
    }
    if select.section.is_some() || select.program.is_some() {
        return Err(CliError::SectionNotElf {
            path: path.to_path_buf(),
        });
    }
    let looks = looks_like_text(path, &bytes);
    // Standard input has no name to go by: text there is assembler text, unless its content
    // shows it is something else (C source, a script).
    let stdin_asm = is_stdin(path)
        && looks
            .as_deref()
            .is_some_and(|l| l == "text" || l.starts_with("assembler text"));
    if is_asm(path) || stdin_asm {
        return Ok(Loaded::Plain(assemble_text(path, bytes)?));
    }
    if let Some(looks) = looks {
        return Err(CliError::NotAProgram {
            path: path.to_path_buf(),
            looks,
        });
    }
    Ok(Loaded::Plain(decode(path, &bytes)?))
}

/// What a text file that is neither an object nor named as assembler text looks like (`C
/// source`, `text`), or `None` when `bytes` are not text: raw bytecode almost always holds NUL
/// or other control bytes (every `exit`, `mov r0, 0` has several), text never does.
fn looks_like_text(path: &Path, bytes: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(bytes).ok()?;
    if text.is_empty()
        || text
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
    {
        return None;
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let by_ext = match ext.as_deref() {
        Some("c" | "h") => Some("C source"),
        Some("cc" | "cpp" | "cxx" | "hpp" | "hh") => Some("C++ source"),
        Some("rs") => Some("Rust source"),
        Some("py") => Some("Python source"),
        Some("md" | "markdown") => Some("Markdown text"),
        Some("json") => Some("JSON"),
        Some("sh") => Some("a shell script"),
        _ => None,
    };
    let c_like = text.contains("#include") || text.contains("SEC(");
    let what = match by_ext {
        Some(what) => what.to_string(),
        None if c_like => "C source".to_string(),
        None if text.starts_with("#!") => "a script".to_string(),
        None if assemble(text).is_ok() => {
            "assembler text (name it .asm or .s to assemble it)".to_string()
        }
        None => "text".to_string(),
    };
    Some(match ext.as_deref() {
        Some(e @ ("bin" | "o")) => format!("{what}, though named .{e}"),
        _ => what,
    })
}

/// The global options that shape every ELF object opened: `--kconfig NAME=VALUE`,
/// `--max-entries NAME=N` and `--inner-map OUTER=TYPE:KEY:VALUE:MAX`.
#[derive(Debug, Default)]
pub(crate) struct ObjectOptions {
    pub(crate) kconfig: Vec<(String, String)>,
    pub(crate) max_entries: Vec<(String, u32)>,
    pub(crate) inner_map: Vec<(String, bpfx::MapSpec)>,
}

/// The [`ObjectOptions`], set once by `main` before any object is opened.
static OBJECT_OPTIONS: std::sync::OnceLock<ObjectOptions> = std::sync::OnceLock::new();

/// Records the global object options for every object opened from now on.
pub(crate) fn set_object_options(options: ObjectOptions) {
    let _ = OBJECT_OPTIONS.set(options);
}

fn object_options() -> &'static ObjectOptions {
    OBJECT_OPTIONS.get_or_init(ObjectOptions::default)
}

/// Opens the ELF object in `path` (already read into `bytes`) with `vm`; every map named by
/// `--max-entries` must be one of its maps.
pub(crate) fn open_object(
    vm: &bpfx::Vm,
    path: &Path,
    bytes: &[u8],
) -> Result<bpfx::Object, CliError> {
    let obj = open_object_as_is(vm, path, bytes)?;
    for (name, _) in &object_options().max_entries {
        if !obj.maps().any(|m| m.name() == name) {
            let names: Vec<&str> = obj.maps().map(|m| m.name()).collect();
            return Err(CliError::Usage(format!(
                "--max-entries {name}=…: {} has no map named `{name}` (its maps: {})",
                path.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    for (name, _) in &object_options().inner_map {
        let outer = obj.maps().find(|m| m.name() == name);
        if !outer
            .is_some_and(|m| matches!(m.kind(), Some(MapKind::ArrayOfMaps | MapKind::HashOfMaps)))
        {
            let names: Vec<&str> = obj
                .maps()
                .filter(|m| matches!(m.kind(), Some(MapKind::ArrayOfMaps | MapKind::HashOfMaps)))
                .map(|m| m.name())
                .collect();
            return Err(CliError::Usage(format!(
                "--inner-map {name}=…: {} has no map of maps named `{name}` (its maps of maps: {})",
                path.display(),
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    Ok(obj)
}

/// Opens the ELF object in `path` with `vm`, its errors told as the CLI tells them.
fn open_object_as_is(vm: &bpfx::Vm, path: &Path, bytes: &[u8]) -> Result<bpfx::Object, CliError> {
    vm.load(bytes).map_err(|e| match e {
        bpfx::Error::Elf { source, .. } => match *source {
            bpfx_elf::ElfError::NotBpf(machine) => CliError::NotBpf {
                path: path.to_path_buf(),
                arch: format!("e_machine {machine}"),
            },
            bpfx_elf::ElfError::NotElf(reason) => CliError::Elf {
                path: path.to_path_buf(),
                reason: truncation(bytes).unwrap_or_else(|| reason.to_string()),
                truncated: truncation(bytes).is_some(),
            },
            bpfx_elf::ElfError::Malformed { what, reason } => CliError::Elf {
                path: path.to_path_buf(),
                truncated: truncation(bytes).is_some(),
                reason: truncation(bytes).unwrap_or(format!("{what}: {reason}")),
            },
            source => CliError::Load {
                path: path.to_path_buf(),
                source: Box::new(source),
            },
        },
        other => CliError::Object {
            path: path.to_path_buf(),
            source: other,
        },
    })
}

/// Where a 64-bit little-endian ELF file (what clang emits for eBPF) is cut short: its header,
/// its section header table or a section's contents ending past the end of the file.
fn truncation(bytes: &[u8]) -> Option<String> {
    const EHDR: usize = 64;
    const SHT_NOBITS: u32 = 8;
    let len = bytes.len() as u64;
    if bytes.len() < EHDR {
        return Some(format!(
            "{len} bytes, shorter than the {EHDR}-byte ELF header"
        ));
    }
    // ELFCLASS64, little-endian: the layout read below.
    if bytes[4] != 2 || bytes[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| u64::from(u16::from_le_bytes([bytes[o], bytes[o + 1]]));
    let u64_at = |b: &[u8], o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(o..o + 8)?.try_into().ok()?))
    };
    let shoff = u64_at(bytes, 0x28)?;
    let (shentsize, shnum) = (u16_at(0x3a), u16_at(0x3c));
    let table_end = shoff.checked_add(shentsize.checked_mul(shnum)?)?;
    if table_end > len {
        return Some(format!(
            "the section header table ends at byte {table_end}, past the end of \
             the file ({len} bytes)"
        ));
    }
    if shentsize < 0x28 {
        return None;
    }
    for i in 0..shnum {
        let h = usize::try_from(shoff + i * shentsize).ok()?;
        let ty = u32::from_le_bytes(bytes.get(h + 4..h + 8)?.try_into().ok()?);
        let (off, size) = (u64_at(bytes, h + 0x18)?, u64_at(bytes, h + 0x20)?);
        let end = off.checked_add(size)?;
        if ty != SHT_NOBITS && end > len {
            return Some(format!(
                "section #{i} ends at byte {end}, past the end of the file \
                 ({len} bytes)"
            ));
        }
    }
    None
}

/// Opens `path`, which must be an ELF object, with `vm`.
pub(crate) fn load_object(vm: &bpfx::Vm, path: &Path) -> Result<bpfx::Object, CliError> {
    let bytes = read(path)?;
    if !bytes.starts_with(ELF_MAGIC) {
        return Err(CliError::NotElf {
            path: path.to_path_buf(),
        });
    }
    open_object(vm, path, &bytes)
}

/// The runtime for `--mem-limit` (the default limit when absent).
pub(crate) fn vm(mem_limit: Option<u64>) -> bpfx::Vm {
    let o = object_options();
    let vm = o
        .kconfig
        .iter()
        .fold(bpfx::Vm::new(), |vm, (name, value)| vm.kconfig(name, value));
    let vm = o
        .max_entries
        .iter()
        .fold(vm, |vm, (name, n)| vm.max_entries(name, *n));
    let vm = o
        .inner_map
        .iter()
        .fold(vm, |vm, (name, t)| vm.inner_map(name, t.clone()));
    match mem_limit {
        Some(bytes) => vm.mem_limit(bytes),
        None => vm,
    }
}

/// A size in bytes, as `--mem-limit` takes it: a number with an optional binary suffix,
/// `K`, `M`, `G` or `T` (times 1024, 1024², …), optionally followed by `iB` or `B`, in any
/// case: `65536`, `64K`, `64M`, `1G`, `1GiB`.
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a size in bytes (for example 65536, 64M, 1G)"))?;
    let lower = unit.to_ascii_lowercase();
    let unit = lower
        .strip_suffix("ib")
        .or_else(|| lower.strip_suffix('b'))
        .unwrap_or(&lower);
    let shift = match unit {
        "" => 0,
        "k" => 10,
        "m" => 20,
        "g" => 30,
        "t" => 40,
        _ => {
            return Err(format!(
                "`{s}`: unknown unit (use K, M, G or T, powers of 1024)"
            ));
        }
    };
    n.checked_mul(1u64 << shift)
        .ok_or_else(|| format!("`{s}` is more than 2^64 bytes"))
}

/// The program chosen by `select`: `--program NAME` (within `--section` when both are given),
/// or the only program of `--section NAME` (a section, or else a program's name), or the only
/// program of the object.
fn choose(path: &Path, obj: &bpfx::Object, select: Select<'_>) -> Result<String, CliError> {
    let mut sections: Vec<String> = Vec::new();
    for p in obj.programs() {
        if !sections.iter().any(|s| s == p.section) {
            sections.push(p.section.to_string());
        }
    }
    let listed = |section: Option<&str>| -> Vec<String> {
        obj.programs()
            .filter(|p| section.is_none_or(|s| p.section == s))
            .map(|p| format!("{} (section {})", p.name, p.section))
            .collect()
    };
    let p = || path.to_path_buf();
    match (select.section, select.program) {
        (section, Some(name)) => obj
            .programs()
            .find(|q| q.name == name && section.is_none_or(|s| q.section == s))
            .map(|q| q.name.to_string())
            .ok_or_else(|| CliError::NoSuchProgram {
                path: p(),
                name: name.to_string(),
                section: section.map(str::to_string),
                programs: listed(None),
            }),
        (Some(name), None) => {
            let in_section: Vec<_> = obj.programs().filter(|q| q.section == name).collect();
            match in_section.as_slice() {
                [only] => Ok(only.name.to_string()),
                [] => obj
                    .programs()
                    .find(|q| q.name == name)
                    .map(|q| q.name.to_string())
                    .ok_or_else(|| CliError::NoSuchSection {
                        path: p(),
                        name: name.to_string(),
                        sections,
                    }),
                several => Err(CliError::AmbiguousProgram {
                    path: p(),
                    section: name.to_string(),
                    programs: several.iter().map(|q| q.name.to_string()).collect(),
                }),
            }
        }
        (None, None) => {
            let mut it = obj.programs();
            match (it.next(), it.next()) {
                (Some(only), None) => Ok(only.name.to_string()),
                (None, _) => Err(CliError::NoProgram { path: p() }),
                _ => Err(CliError::AmbiguousSection {
                    path: p(),
                    programs: listed(None),
                }),
            }
        }
    }
}

/// Assembles the text in `path`, whatever its extension, into a validated program.
pub(crate) fn assemble_file(path: &Path) -> Result<Program, CliError> {
    assemble_text(path, read(path)?)
}

fn is_asm(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("asm") || e.eq_ignore_ascii_case("s"))
}

/// Whether `path` is `-`, standard input.
pub(crate) fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// Set once standard input has been read: it can be read once.
static STDIN_READ: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The bytes of `path`; `-` is standard input (once per command).
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    let io = |source| CliError::Io {
        path: path.to_path_buf(),
        source,
    };
    if is_stdin(path) {
        if STDIN_READ.swap(true, std::sync::atomic::Ordering::Relaxed) {
            return Err(CliError::Usage(
                "standard input (-) can be read once: give it to one option".into(),
            ));
        }
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin().lock(), &mut bytes).map_err(io)?;
        return Ok(bytes);
    }
    std::fs::read(path).map_err(io)
}

fn assemble_text(path: &Path, bytes: Vec<u8>) -> Result<Program, CliError> {
    let text = String::from_utf8(bytes).map_err(|_| CliError::NotText {
        path: path.to_path_buf(),
    })?;
    let slots = assemble(&text).map_err(|source| CliError::Asm {
        path: path.to_path_buf(),
        source,
    })?;
    let bytes: Vec<u8> = slots.iter().flat_map(|i| i.to_bytes()).collect();
    decode(path, &bytes)
}

/// Decodes bytecode; on error, recovers the instruction at the faulty pc when it decodes by
/// itself, so the message can show it in assembly rather than as raw fields.
fn decode(path: &Path, bytes: &[u8]) -> Result<Program, CliError> {
    Program::from_bytes(bytes).map_err(|source| {
        let op = op_at(bytes, source.pc as usize);
        CliError::Decode {
            path: path.to_path_buf(),
            source,
            op,
        }
    })
}

fn op_at(bytes: &[u8], pc: usize) -> Option<Op> {
    let start = pc.checked_mul(INSN_SIZE)?;
    let slots: Vec<Insn> = bytes
        .get(start..)?
        .chunks_exact(INSN_SIZE)
        .take(2)
        .filter_map(|c| c.try_into().ok().map(Insn::from_bytes))
        .collect();
    decode_one(&slots).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_with_binary_suffixes() {
        assert_eq!(parse_bytes("65536"), Ok(65536));
        assert_eq!(parse_bytes("64K"), Ok(64 << 10));
        assert_eq!(parse_bytes("64m"), Ok(64 << 20));
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert_eq!(parse_bytes("2MB"), Ok(2 << 20));
        assert_eq!(parse_bytes("0"), Ok(0));
        for bad in ["", "M", "1X", "-1", "1.5G", "99999999999T"] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
    }
}

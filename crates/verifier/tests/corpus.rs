//! The verifier corpus at the repository root: `tests/verifier/accept/*.asm` must verify,
//! `tests/verifier/reject/*.asm` must be rejected, and each outcome is snapshotted (the access
//! facts of accepted programs, the error of rejected ones).
//!
//! Directives at the top of a file, one per comment line:
//! - `# mode: strict`: rejected only in Strict mode (and, as a check of the mode table, accepted
//!   in Checked mode); `# mode: checked`: an accept file accepted only in Checked mode (Strict
//!   must reject it). Without it, an accept file passes both modes and a reject file fails both
//!   with the same error.
//! - `# mem: N` (input size, default 64), `# mem: unknown`, `# context: packet`,
//!   `# budget: N`, `# frames: N`.
//!
//! Every file runs with the helpers and maps of [`env`].

use bpfx_bytecode::{Program, assemble};
use bpfx_verifier::{
    ArgKind, Config, ContextKind, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RetKind,
    VerifiedProgram, verify,
};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/verifier");

/// The helpers and maps every corpus file sees.
fn env() -> (HelperTable, MapTable) {
    let mut h = HelperTable::conformance();
    use ArgKind::*;
    h.insert(
        1,
        HelperSig::new(
            "map_lookup_elem",
            vec![MapHandle, MapKey],
            RetKind::MapValueOrNull,
        ),
    );
    h.insert(
        2,
        HelperSig::new(
            "map_update_elem",
            vec![MapHandle, MapKey, MapValue, Scalar],
            RetKind::Scalar,
        ),
    );
    h.insert(
        6,
        HelperSig::new(
            "fill",
            vec![PtrToMem { size_arg: Some(1) }, Scalar],
            RetKind::Scalar,
        ),
    );
    h.insert(
        7,
        HelperSig::new("buffer", vec![PtrToStackOrMem], RetKind::Scalar),
    );
    h.insert(8, HelperSig::new("notify", vec![], RetKind::Void));
    h.insert(
        9,
        HelperSig::new("scalar_arg", vec![Scalar], RetKind::Scalar),
    );
    h.insert(
        10,
        HelperSig::new(
            "print",
            vec![PtrToReadOnlyMem { size_arg: Some(1) }, Scalar],
            RetKind::Scalar,
        ),
    );
    let mut m = MapTable::new();
    m.insert(MapRef::Fd(1), MapDef::new(4, 16));
    m.insert(MapRef::Idx(0), MapDef::new(8, 8));
    m.insert(MapRef::Idx(1), MapDef::new(4, 8).with_read_only(true));
    (h, m)
}

struct File {
    name: String,
    text: String,
    only: Option<Mode>,
    cfg: Config,
}

fn load(dir: &str) -> Vec<File> {
    let dir = PathBuf::from(CORPUS).join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "asm"))
        .collect();
    paths.sort();
    paths.iter().map(|p| parse(p)).collect()
}

fn parse(path: &Path) -> File {
    let name = path
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(path).expect("readable corpus file");
    let (helpers, maps) = env();
    let mut cfg = Config {
        mem_size: Some(64),
        helpers,
        maps,
        ..Config::default()
    };
    let mut only = None;
    for line in text.lines() {
        let Some(d) = line.trim().strip_prefix('#') else {
            break;
        };
        let Some((key, val)) = d.split_once(':') else {
            continue;
        };
        let val = val.trim();
        match key.trim() {
            "mode" => {
                only = Some(match val {
                    "strict" => Mode::Strict,
                    "checked" => Mode::Checked,
                    _ => panic!("{name}: unknown mode {val}"),
                })
            }
            "mem" => {
                cfg.mem_size = match val {
                    "unknown" => None,
                    n => Some(n.parse().expect("a memory size")),
                }
            }
            "context" => {
                assert_eq!(val, "packet", "{name}: unknown context");
                cfg.context = ContextKind::Packet {
                    data: 0,
                    data_end: 8,
                };
            }
            "budget" => cfg.insn_budget = val.parse().expect("a budget"),
            "frames" => cfg.max_frames = val.parse().expect("a frame count"),
            _ => {}
        }
    }
    File {
        name,
        text,
        only,
        cfg,
    }
}

fn program(f: &File) -> Program {
    let slots = assemble(&f.text).unwrap_or_else(|e| panic!("{}: {e}", f.name));
    Program::decode(slots).unwrap_or_else(|e| panic!("{}: {e}", f.name))
}

fn run(f: &File, mode: Mode) -> Result<VerifiedProgram, bpfx_verifier::VerifyError> {
    let cfg = Config {
        mode,
        ..f.cfg.clone()
    };
    verify(program(f), &cfg)
}

/// The program with the access fact of every load, store and atomic in Checked mode, and the
/// Strict-mode fact after it where Strict mode accepts and proves something different.
fn listing(v: &VerifiedProgram, strict: Option<&VerifiedProgram>) -> String {
    let fact = |f: bpfx_verifier::AccessFact| {
        let p = if f.proven { "proven" } else { "guarded" };
        format!("{:?} {p}", f.region)
    };
    let mut out = String::new();
    for (pc, op) in v.program().iter() {
        write!(out, "{pc}: {op}").expect("write to a String");
        if let Some(f) = v.access(pc) {
            write!(out, "    ; {}", fact(f)).expect("write to a String");
        }
        if let Some(s) = strict
            && s.access(pc) != v.access(pc)
        {
            let f = s.access(pc).map_or("unreached".to_string(), fact);
            write!(out, "    ; strict: {f}").expect("write to a String");
        }
        out.push('\n');
    }
    out
}

#[test]
fn accept_corpus() {
    let files = load("accept");
    assert!(
        files.len() >= 15,
        "the accept corpus has {} files",
        files.len()
    );
    for f in &files {
        let checked = run(f, Mode::Checked)
            .unwrap_or_else(|e| panic!("{}: Checked mode rejects: {e}", f.name));
        let strict = match f.only {
            Some(Mode::Checked) => {
                assert!(
                    run(f, Mode::Strict).is_err(),
                    "{}: marked Checked-only, but Strict mode accepts it",
                    f.name
                );
                None
            }
            _ => Some(
                run(f, Mode::Strict)
                    .unwrap_or_else(|e| panic!("{}: Strict mode rejects: {e}", f.name)),
            ),
        };
        insta::assert_snapshot!(
            format!("accept_{}", f.name),
            listing(&checked, strict.as_ref())
        );
    }
}

#[test]
fn reject_corpus() {
    let files = load("reject");
    assert!(
        files.len() >= 60,
        "the reject corpus has {} files",
        files.len()
    );
    let accepted: Vec<&str> = files
        .iter()
        .filter(|f| run(f, Mode::Strict).is_ok())
        .map(|f| f.name.as_str())
        .collect();
    assert!(accepted.is_empty(), "Strict mode accepts {accepted:?}");
    for f in &files {
        let strict = match run(f, Mode::Strict) {
            Ok(_) => panic!("{}: Strict mode accepts it", f.name),
            Err(e) => e,
        };
        match f.only {
            Some(Mode::Strict) => {
                if let Err(e) = run(f, Mode::Checked) {
                    panic!(
                        "{}: marked Strict-only, but Checked mode rejects: {e}",
                        f.name
                    );
                }
            }
            Some(Mode::Checked) => panic!("{}: a reject file cannot be Checked-only", f.name),
            None => {
                let checked = match run(f, Mode::Checked) {
                    Ok(_) => panic!("{}: Checked mode accepts it", f.name),
                    Err(e) => e,
                };
                assert_eq!(strict, checked, "{}: the modes disagree", f.name);
            }
        }
        insta::assert_snapshot!(format!("reject_{}", f.name), strict.to_string());
    }
}

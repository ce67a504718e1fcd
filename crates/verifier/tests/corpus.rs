//! The verifier corpus at the repository root: `tests/verifier/accept/*.asm` must verify,
//! `tests/verifier/reject/*.asm` must be rejected, and each outcome is snapshotted (the access
//! facts of accepted programs, the error of rejected ones).
//!
//! Directives at the top of a file, one per comment line:
//! - `# mode: strict`: rejected only in Strict mode (and, as a check of the mode table, accepted
//!   in Checked mode); `# mode: checked`: an accept file accepted only in Checked mode (Strict
//!   must reject it). Without it, an accept file passes both modes and a reject file fails both
//!   with the same error.
//! - `# mem: N` (input size, default 64), `# mem: unknown`, `# context: packet` (a context
//!   struct with `data` at offset 0 and `data_end` at 8), `# budget: N`, `# frames: N`.
//! - `# helper: ID:NAME(ARG,...)->RET` and `# map: idx:N,key=K,value=V[,ro]` (or `fd:N,...`),
//!   in the syntax of [`bpfx_verifier::parse_helper`] and [`bpfx_verifier::parse_map`]: a file
//!   sees exactly the helpers and maps it declares.
//!
//! Each directive is also a flag of `bpfx verify` (`--strict`, `--mem-size`, `--ctx packet`,
//! `--insn-budget`, `--max-frames`, `--helper`, `--map`); `crates/cli/tests/verify_corpus.rs`
//! runs the command line on every file and expects these same snapshots.

use bpfx_bytecode::{Program, assemble};
use bpfx_testkit::corpus::{CorpusFile, corpus_files};
use bpfx_verifier::{
    Config, ContextKind, ContextLayout, HelperTable, MapTable, Mode, VerifiedProgram, parse_helper,
    parse_map, verify,
};
use std::fmt::Write as _;

/// A corpus file and the configuration its directives declare (mode aside).
struct File {
    name: String,
    text: String,
    only: Option<Mode>,
    cfg: Config,
}

fn load(dir: &str) -> Vec<File> {
    corpus_files(dir).into_iter().map(config).collect()
}

fn config(f: CorpusFile) -> File {
    let name = f.name;
    let mut cfg = Config {
        mem_size: Some(64),
        helpers: HelperTable::new(),
        maps: MapTable::new(),
        ..Config::default()
    };
    for (key, val) in &f.directives {
        match key.as_str() {
            "mem" => {
                cfg.mem_size = match val.as_str() {
                    "unknown" => None,
                    n => Some(n.parse().expect("a memory size")),
                }
            }
            "context" => {
                assert_eq!(val, "packet", "{name}: unknown context");
                // Laid out once every directive is read: its size is the memory's.
                cfg.context = ContextKind::Fields(ContextLayout::default());
            }
            "budget" => cfg.insn_budget = val.parse().expect("a budget"),
            "frames" => cfg.max_frames = val.parse().expect("a frame count"),
            "helper" => {
                let (id, sig) = parse_helper(val).unwrap_or_else(|e| panic!("{name}: {e}"));
                cfg.helpers.insert(id, sig);
            }
            "map" => {
                let (map, def) = parse_map(val).unwrap_or_else(|e| panic!("{name}: {e}"));
                cfg.maps.insert(map, def);
            }
            _ => {}
        }
    }
    if let ContextKind::Fields(_) = cfg.context {
        let size = cfg
            .mem_size
            .map_or(16, |n| u16::try_from(n).unwrap_or(u16::MAX));
        cfg.context = ContextKind::Fields(ContextLayout::packet_struct(size, 0, 8));
    }
    File {
        name,
        text: f.text,
        only: f.only,
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

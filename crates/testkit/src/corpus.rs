//! The verifier corpus (`tests/verifier/{accept,reject}/*.asm`): each file opens with comment
//! lines, some of them directives `# key: value` that declare the environment it is verified
//! in. One parser for every test that walks the corpus, whether it builds a
//! `bpfx_verifier::Config` from the directives or `bpfx verify` flags. Also the clang corpus
//! (`tests/verifier/clang/`), loaded with the tables its programs are verified against.

use bpfx_bytecode::Program;
use bpfx_verifier::{ArgKind, HelperSig, HelperTable, MapDef, MapRef, MapTable, Mode, RetKind};
use std::path::{Path, PathBuf};

/// The directive keys a corpus file may use, besides `mode` (see [`CorpusFile::only`]):
/// `mem` (`N` or `unknown`), `context` (`packet`), `budget`, `frames`, `helper` and `map` (the
/// `--helper`/`--map` spec syntax), and `rule` (prose naming the rule the file exercises).
pub const DIRECTIVES: [&str; 7] = [
    "mem", "context", "budget", "frames", "helper", "map", "rule",
];

/// One corpus file.
#[derive(Clone, Debug)]
pub struct CorpusFile {
    /// File name without `.asm`.
    pub name: String,
    /// Where it is.
    pub path: PathBuf,
    /// The whole text (the assembler skips the comment lines).
    pub text: String,
    /// `# mode: strict` or `checked`: the only mode whose verdict the file is about.
    pub only: Option<Mode>,
    /// The other directives, in file order, as `(key, value)`.
    pub directives: Vec<(String, String)>,
}

/// The `.asm` files of `tests/verifier/<dir>`, sorted by name. Panics (these are test inputs)
/// on a missing directory, an unknown directive or an unknown mode.
pub fn corpus_files(dir: &str) -> Vec<CorpusFile> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/verifier")
        .join(dir);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus directory {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "asm"))
        .collect();
    paths.sort();
    paths.into_iter().map(parse).collect()
}

fn parse(path: PathBuf) -> CorpusFile {
    let name = path
        .file_stem()
        .expect("a file name")
        .to_string_lossy()
        .into_owned();
    let text = std::fs::read_to_string(&path).expect("a readable corpus file");
    let mut only = None;
    let mut directives = Vec::new();
    for line in text.lines() {
        let Some(d) = line.trim().strip_prefix('#') else {
            break;
        };
        // A directive is `# word: value`; other comment lines are prose.
        let Some((key, val)) = d
            .split_once(':')
            .filter(|(k, _)| k.trim().chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        else {
            continue;
        };
        let (key, val) = (key.trim(), val.trim());
        match key {
            "mode" => {
                only = Some(match val {
                    "strict" => Mode::Strict,
                    "checked" => Mode::Checked,
                    m => panic!("{name}: unknown mode {m}"),
                })
            }
            k if DIRECTIVES.contains(&k) => directives.push((k.to_string(), val.to_string())),
            k => panic!("{name}: unknown directive `{k}`"),
        }
    }
    CorpusFile {
        name,
        path,
        text,
        only,
        directives,
    }
}

/// A program of the clang corpus (`tests/verifier/clang/NAME.o`, the program named `name`)
/// with the helper and map tables it is verified against: `map_lookup_elem` (helper 1) and the
/// object's maps by index, as `bpfx-elf`'s `map_idx` pseudo forms name them. Panics on a
/// missing or malformed object (these are committed test inputs).
pub fn clang_object(name: &str) -> (Program, HelperTable, MapTable) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/verifier/clang")
        .join(format!("{name}.o"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let obj = bpfx_elf::parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    let prog = obj
        .program(name)
        .unwrap_or_else(|| panic!("{name}: no program {name} in the object"))
        .program
        .clone();
    let mut helpers = HelperTable::new();
    helpers.insert(
        1,
        HelperSig::new(
            "map_lookup_elem",
            vec![ArgKind::MapHandle, ArgKind::MapKey],
            RetKind::MapValueOrNull,
        ),
    );
    let mut maps = MapTable::new();
    for (i, m) in obj.maps.iter().enumerate() {
        maps.insert(
            MapRef::Idx(i as i32),
            MapDef {
                key_size: m.key_size,
                value_size: m.value_size,
                read_only: m.read_only,
                prog_array: m.kind == bpfx_elf::MapKind::ProgArray.into(),
                inner: None,
                max_entries: m.max_entries,
                map_type: m.kind.raw(),
                timer_off: m.timer_off,
            },
        );
    }
    (prog, helpers, maps)
}

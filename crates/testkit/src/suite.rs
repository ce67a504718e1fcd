//! The BPF conformance suite as runnable tests: each `tests/*.data` file becomes a program, an
//! input memory and an expectation, and runs on any [`Engine`]. The repository's own `.data`
//! files ([`own_dir`], `tests/data/`) load the same way ([`load_own`]); their `-- error` text is
//! the trap bpfx must raise, as `insn N: <kind>` (`insn 3: memory access out of bounds`: the
//! trap's message without the `#`, which starts a comment in the format), so for them the
//! trap's kind and pc are checked too.
//!
//! The suite lives outside the repository (see [`suite_dir`]). Each program is the file's
//! `-- raw` section when it has one (as the suite's runner does), otherwise its `-- asm`
//! section through [`bpfx_bytecode::assemble`]. `assembled_tests.jsonl` holds the bytecode the
//! suite's own runner produces for every file (`program_hex`); it is kept beside each test as
//! [`SuiteTest::reference`] so a test can check our assembler against it.

use crate::data::{self, DataError, DataFile};
use crate::engine::{Engine, RunError};
use bpfx_bytecode::{AsmError, DecodeError, Program};
use bpfx_exec::{Env, Helpers, Trap};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Where the conformance suite is, relative to this crate.
pub fn suite_dir() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/bpf_conformance"
    ))
}

/// Number of `tests/*.data` files in the suite.
pub const SUITE_SIZE: usize = 313;

/// What a test expects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The program returns this `r0`.
    Result(u64),
    /// The program fails. The text is another runtime's message, which bpfx does not mimic, so
    /// only the failure itself is checked.
    Error(String),
    /// The program traps, at the pc and with the kind this text names (`insn 3: memory access
    /// out of bounds`, see [`trap_text`]): the expectation of the repository's own files.
    Trap(String),
}

/// One runnable conformance test.
#[derive(Clone, Debug)]
pub struct SuiteTest {
    /// The parsed `.data` file.
    pub file: DataFile,
    /// The bytecode the suite's runner produces for this file (`program_hex`); `None` for the
    /// repository's own files, which no runner has assembled.
    pub reference: Option<Vec<u8>>,
    /// The program: the `-- raw` slots, or the assembled `-- asm` text.
    pub prog: Program,
    /// What it must do.
    pub expect: Expect,
}

/// Why the suite could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SuiteError {
    /// A `.data` file or the directory could not be read or parsed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// `assembled_tests.jsonl` is missing or malformed.
    #[error("{}: line {line}: {msg}", path.display())]
    Reference {
        /// The jsonl path.
        path: PathBuf,
        /// 1-based line (0 when the file could not be read).
        line: usize,
        /// What is wrong.
        msg: String,
    },
    /// A test has no reference bytecode.
    #[error("{0}: no program_hex in assembled_tests.jsonl")]
    MissingReference(String),
    /// A test has neither `-- asm` nor `-- raw`.
    #[error("{0}: no program (`-- asm` or `-- raw`)")]
    NoProgram(String),
    /// A test's assembly does not assemble.
    #[error("{name}: {source}")]
    Assemble {
        /// The test.
        name: String,
        /// The assembler's error.
        source: AsmError,
    },
    /// A test's program does not decode.
    #[error("{name}: {source}")]
    Decode {
        /// The test.
        name: String,
        /// The decoder's error.
        source: DecodeError,
    },
    /// A test expects neither a result nor an error (the runner skips such files).
    #[error("{0}: neither `-- result` nor `-- error`")]
    NoExpectation(String),
}

/// Reads `assembled_tests.jsonl`: test name → reference bytecode.
pub fn load_reference(dir: &Path) -> Result<BTreeMap<String, Vec<u8>>, SuiteError> {
    let path = dir.join("assembled_tests.jsonl");
    let err = |line, msg: String| SuiteError::Reference {
        path: path.clone(),
        line,
        msg,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| err(0, e.to_string()))?;
    let mut map = BTreeMap::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| err(i + 1, e.to_string()))?;
        let name = v["test"].as_str();
        let hex = v["program_hex"].as_str();
        let (Some(name), Some(hex)) = (name, hex) else {
            return Err(err(
                i + 1,
                "needs string fields test and program_hex".into(),
            ));
        };
        let bytes = data::decode_hex(hex).ok_or_else(|| err(i + 1, "bad program_hex".into()))?;
        map.insert(name.to_string(), bytes);
    }
    Ok(map)
}

/// Loads every test of the suite in `dir` (`dir/tests/*.data` and `dir/assembled_tests.jsonl`).
pub fn load_suite(dir: &Path) -> Result<Vec<SuiteTest>, SuiteError> {
    let reference = load_reference(dir)?;
    data::load_dir(dir.join("tests"))?
        .into_iter()
        .map(|file| {
            let reference = reference
                .get(&file.name)
                .cloned()
                .ok_or_else(|| SuiteError::MissingReference(file.name.clone()))?;
            test(file, Some(reference), Expect::Error)
        })
        .collect()
}

/// Where the repository keeps its own `.data` files (`tests/data/`), relative to this crate.
pub fn own_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/data"))
}

/// Loads every `.data` file of `dir` as one of the repository's own tests: no reference
/// bytecode, and an `-- error` is the exact trap ([`Expect::Trap`]).
pub fn load_own(dir: &Path) -> Result<Vec<SuiteTest>, SuiteError> {
    data::load_dir(dir)?
        .into_iter()
        .map(|file| test(file, None, Expect::Trap))
        .collect()
}

/// `file` as a test, its `-- error` text made an expectation by `error`.
fn test(
    file: DataFile,
    reference: Option<Vec<u8>>,
    error: fn(String) -> Expect,
) -> Result<SuiteTest, SuiteError> {
    let prog = program(&file)?;
    let expect = match (&file.error, file.result) {
        (Some(e), _) if !e.is_empty() => error(e.clone()),
        (_, Some(r)) => Expect::Result(r),
        _ => return Err(SuiteError::NoExpectation(file.name.clone())),
    };
    Ok(SuiteTest {
        file,
        reference,
        prog,
        expect,
    })
}

/// The program of a `.data` file: its raw slots if it has them, else its assembly.
pub fn program(file: &DataFile) -> Result<Program, SuiteError> {
    let name = || file.name.clone();
    let decode = |source| SuiteError::Decode {
        name: name(),
        source,
    };
    if let Some(bytes) = file.raw_bytes() {
        return Program::from_bytes(&bytes).map_err(decode);
    }
    let asm = file
        .asm
        .as_deref()
        .ok_or_else(|| SuiteError::NoProgram(name()))?;
    let insns = bpfx_bytecode::assemble(asm).map_err(|source| SuiteError::Assemble {
        name: name(),
        source,
    })?;
    Program::decode(insns).map_err(decode)
}

/// How a `.data` file of the repository names a trap in its `-- error` section: `insn N: `
/// and the kind's message (the trap's own message without the `#`).
pub fn trap_text(trap: &Trap) -> String {
    format!("insn {}: {}", trap.pc.0, trap.kind)
}

/// Runs one test on `engine` the way the suite's runner would (the input memory as `r1`/`r2`,
/// helper 5 returning its first argument), under `budget` (`None`: the default, as the runner
/// has it), returning what went wrong if it fails.
pub fn run_test(engine: &dyn Engine, test: &SuiteTest, budget: Option<u64>) -> Result<(), String> {
    let mut mem = test.file.mem.clone();
    let mut env = Env::with_helpers(Helpers::conformance());
    env.budget = budget;
    let got = engine.execute(&test.prog, &mut mem, &mut env);
    match (&test.expect, got) {
        (Expect::Result(want), Ok(r0)) if r0 == *want => Ok(()),
        (Expect::Result(want), Ok(r0)) => Err(format!("r0 = {r0:#x}, expected {want:#x}")),
        (Expect::Result(want), Err(e)) => Err(format!("{e}, expected r0 = {want:#x}")),
        (Expect::Error(_), Err(RunError::Trap(_) | RunError::Compile(_))) => Ok(()),
        (Expect::Trap(want), Err(RunError::Trap(t))) if trap_text(&t) == *want => Ok(()),
        (Expect::Trap(want), Err(e)) => Err(format!("{e}, expected the trap `{want}`")),
        (Expect::Error(e) | Expect::Trap(e), Ok(r0)) => {
            Err(format!("r0 = {r0:#x}, expected an error ({e})"))
        }
    }
}

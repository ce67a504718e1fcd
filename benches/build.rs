//! Compiles every `programs/*.c` natively (the baselines each workload is measured against),
//! once per compiler, into one static library each, and writes `programs.rs` into OUT_DIR: the
//! table of workloads, each with its committed eBPF object and its native entry points. Adding
//! `programs/NAME.c` and the `NAME.o` that `programs/build.sh` makes adds a workload to every
//! bench and test.
//!
//! The compilers, both at plain `-O2` (what a C programmer ships; clang's auto-vectoriser on,
//! gcc 12+'s cheap one too):
//! - clang: `clang-19`, or the compiler `BPFX_BENCH_CLANG` names. The baseline. When it is not
//!   installed (or `BPFX_BENCH_CLANG=none`), the build goes on without it, says so in a
//!   warning, and the tables print "not built" in its column: nothing fails for lack of clang.
//! - gcc: `gcc`, or the compiler `BPFX_BENCH_GCC` names; the second column. Without it too the
//!   build stops: the benches need one native build.
//!
//! `CC` does not choose them (each column is named after its compiler); `CFLAGS` adds to both.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One native build: the name that goes into symbols and `BPFX_NATIVE`, and the compiler.
struct Native {
    /// `clang` or `gcc`: the symbol infix and the column.
    name: &'static str,
    /// The environment variable that overrides the compiler.
    env: &'static str,
    /// The compiler run when the variable is unset.
    default: &'static str,
}

const NATIVES: [Native; 2] = [
    Native {
        name: "clang",
        env: "BPFX_BENCH_CLANG",
        default: "clang-19",
    },
    Native {
        name: "gcc",
        env: "BPFX_BENCH_GCC",
        default: "gcc",
    },
];

/// The first line of `compiler --version`, if the compiler runs at all.
fn version(compiler: &str) -> Option<String> {
    let out = Command::new(compiler).arg("--version").output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(text.lines().next()?.trim().to_string())
}

/// Builds every source with `native`'s compiler into `libbpfx_bench_<name>.a` (and tells cargo
/// to link it). `Err` says why it was not built.
fn build(native: &Native, dir: &Path, sources: &[PathBuf]) -> Result<String, String> {
    println!("cargo:rerun-if-env-changed={}", native.env);
    let compiler = std::env::var(native.env).unwrap_or_else(|_| native.default.to_string());
    if compiler.is_empty() || compiler == "none" {
        return Err(format!("{}={compiler:?}", native.env));
    }
    let version = version(&compiler).ok_or_else(|| format!("{compiler} does not run"))?;
    let mut build = cc::Build::new();
    build
        .compiler(&compiler)
        .include(dir)
        .define("BPFX_NATIVE", native.name)
        // clang -O2 builds the eBPF objects; -O2 here too, whatever cargo's profile says.
        .opt_level(2)
        .debug(false)
        .warnings(true);
    for src in sources {
        build.file(src);
    }
    build
        .try_compile(&format!("bpfx_bench_{}", native.name))
        .map_err(|e| format!("{compiler}: {e}"))?;
    Ok(version)
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "c"))
        .collect();
    sources.sort();
    assert!(!sources.is_empty(), "no programs in {}", dir.display());

    let mut built: Vec<(&Native, String)> = Vec::new();
    let mut versions = String::new();
    for native in &NATIVES {
        match build(native, &dir, &sources) {
            Ok(version) => {
                writeln!(versions, "    Some({version:?}),").unwrap();
                built.push((native, version));
            }
            Err(why) => {
                println!(
                    "cargo:warning=the {} column of the benches is not built ({why})",
                    native.name
                );
                writeln!(versions, "    None,").unwrap();
            }
        }
    }
    assert!(
        !built.is_empty(),
        "no native compiler built the workloads: install clang-19 or gcc"
    );
    // Input shapers are plain deterministic C: take them from the first compiler built.
    let shaper = built[0].0.name;

    let mut externs = String::new();
    let mut table = String::new();
    for src in &sources {
        println!("cargo:rerun-if-changed={}", src.display());
        let name = src
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("program file names are UTF-8");
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "program name {name:?} must be a C identifier"
        );
        let object = src.with_extension("o");
        assert!(
            object.exists(),
            "{} has no eBPF object: run programs/build.sh and commit {}",
            src.display(),
            object.display()
        );
        println!("cargo:rerun-if-changed={}", object.display());
        let text = std::fs::read_to_string(src).expect("program source is UTF-8");
        let has_input = text.contains(&format!("INPUT({name})"));

        let mut entries = String::new();
        for native in &NATIVES {
            if built.iter().any(|(n, _)| n.name == native.name) {
                writeln!(
                    externs,
                    "    fn bpfx_{c}_{name}(mem: *mut u8, len: u64) -> u64;",
                    c = native.name
                )
                .unwrap();
                write!(entries, "Some(bpfx_{}_{name}), ", native.name).unwrap();
            } else {
                entries.push_str("None, ");
            }
        }
        let input = if has_input {
            writeln!(
                externs,
                "    fn bpfx_input_{shaper}_{name}(mem: *mut u8, len: u64);"
            )
            .unwrap();
            format!("Some(bpfx_input_{shaper}_{name})")
        } else {
            "None".to_string()
        };
        writeln!(
            table,
            "    NativeProgram {{ name: {name:?}, object: include_bytes!({object:?}), \
             entries: [{entries}], input: {input} }},",
            object = object.display().to_string(),
        )
        .unwrap();
    }

    let replay = build_replay(built[0].0, &dir.with_file_name("replay"));

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let code = format!(
        "unsafe extern \"C\" {{\n{externs}}}\n\n\
         /// Every workload, in file-name order.\n\
         pub(crate) static PROGRAMS: &[NativeProgram] = &[\n{table}];\n\n\
         /// Per native compiler (in `Native::ALL` order), its `--version` line, or `None` when\n\
         /// it did not build the workloads.\n\
         pub(crate) static COMPILERS: [Option<&str>; 2] = [\n{versions}];\n\n\
         /// The compiler that built the replay filters natively (`replay/native.c`).\n\
         pub(crate) static REPLAY_COMPILER: &str = {replay:?};\n"
    );
    std::fs::write(out.join("programs.rs"), code).expect("writing programs.rs");
}

/// Builds the replay bench's native filters (`replay/native.c`, the ceiling of `benches/replay.rs`)
/// with `native`'s compiler, the baseline's, at `-O2`; gives its `--version` line.
fn build_replay(native: &Native, dir: &Path) -> String {
    println!("cargo:rerun-if-changed={}", dir.display());
    for f in ["native.c", "replay.h", "bodies.h"] {
        println!("cargo:rerun-if-changed={}", dir.join(f).display());
    }
    let compiler = std::env::var(native.env).unwrap_or_else(|_| native.default.to_string());
    let version = version(&compiler).unwrap_or_else(|| compiler.clone());
    cc::Build::new()
        .compiler(&compiler)
        .include(dir)
        .opt_level(2)
        .debug(false)
        .warnings(true)
        .file(dir.join("native.c"))
        .compile("bpfx_replay_native");
    version
}

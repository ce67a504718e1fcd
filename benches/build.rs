//! Compiles every `programs/*.c` natively (the ceiling each workload is measured against) into
//! one static library, and writes `programs.rs` into OUT_DIR: the table of workloads, each with
//! its committed eBPF object and its native entry point. Adding `programs/NAME.c` and the
//! `NAME.o` that `programs/build.sh` makes adds a workload to every bench and test.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

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

    let mut build = cc::Build::new();
    build
        .include(&dir)
        // clang -O2 builds the eBPF objects; -O2 here too, whatever cargo's profile says.
        .opt_level(2)
        // eBPF has no vector instructions: the ceiling is the best scalar code, so that the
        // ratio measures the JIT, not the absence of SIMD in the ISA.
        .flag_if_supported("-fno-tree-vectorize")
        .flag_if_supported("-fno-vectorize")
        .flag_if_supported("-fno-slp-vectorize")
        .warnings(true);

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
        build.file(src);

        writeln!(
            externs,
            "    fn bpfx_native_{name}(mem: *mut u8, len: u64) -> u64;"
        )
        .unwrap();
        if has_input {
            writeln!(externs, "    fn bpfx_input_{name}(mem: *mut u8, len: u64);").unwrap();
        }
        let input = if has_input {
            format!("Some(bpfx_input_{name})")
        } else {
            "None".to_string()
        };
        writeln!(
            table,
            "    NativeProgram {{ name: {name:?}, object: include_bytes!({object:?}), \
             entry: bpfx_native_{name}, input: {input} }},",
            object = object.display().to_string(),
        )
        .unwrap();
    }
    build.compile("bpfx_bench_programs");

    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let code = format!(
        "unsafe extern \"C\" {{\n{externs}}}\n\n\
         /// Every workload, in file-name order.\n\
         pub(crate) static PROGRAMS: &[NativeProgram] = &[\n{table}];\n"
    );
    std::fs::write(out.join("programs.rs"), code).expect("writing programs.rs");
}

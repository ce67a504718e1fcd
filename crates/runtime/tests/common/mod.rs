//! What the hostile-input tests share: every engine, and for the JIT every option set.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{Program, Verified};
use bpfx_jit::{CodeMemory, JitOptions};

/// Assembles and decodes `text`.
pub(crate) fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

/// The interpreter (`None`), then the JIT with each option set: default, hardened, blinding
/// alone, Spectre masking alone, dual-mapped code memory.
pub(crate) fn engines() -> Vec<(&'static str, Option<JitOptions>)> {
    vec![
        ("interp", None),
        ("jit", Some(JitOptions::default())),
        ("jit-hardened", Some(JitOptions::hardened())),
        (
            "jit-blinding",
            Some(JitOptions {
                blinding: true,
                ..JitOptions::default()
            }),
        ),
        (
            "jit-spectre",
            Some(JitOptions {
                spectre: true,
                ..JitOptions::default()
            }),
        ),
        (
            "jit-dual",
            Some(JitOptions {
                code_memory: CodeMemory::DualMapped,
                ..JitOptions::default()
            }),
        ),
    ]
}

/// `v` on the engine `opts` names.
pub(crate) fn prepare(v: Verified, opts: Option<JitOptions>) -> Program {
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(&o).unwrap(),
    }
}

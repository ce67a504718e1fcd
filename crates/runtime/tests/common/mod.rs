//! What the hostile-input tests share: every engine, and for the JIT every option set.

use bpfx::bytecode::{Program as Bytecode, assemble};
use bpfx::{Program, Verified};
use bpfx_jit::JitOptions;

/// Assembles and decodes `text`.
pub(crate) fn code(text: &str) -> Bytecode {
    Bytecode::decode(assemble(text).unwrap()).unwrap()
}

/// The engine matrix every harness of the workspace uses ([`bpfx_testkit::matrix`]): the
/// interpreter (`None`), then the JIT under each option set (default, hardened, blinding
/// alone, Spectre masking alone, dual-mapped code memory), each with its name.
pub(crate) use bpfx_testkit::matrix as engines;

/// `v` on the engine `opts` names.
pub(crate) fn prepare(v: Verified, opts: Option<JitOptions>) -> Program {
    match opts {
        None => v.interpret(),
        Some(o) => v.compile_with(&o).unwrap(),
    }
}

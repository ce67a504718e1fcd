//! Externs at load time: which programs cannot run because of an extern symbol they need
//! (the rules of `docs/runtime.md`, "Externs"). The `.kconfig` values themselves are written
//! by `bpfx_elf::Object::kconfig_value` from `Vm::kconfig`.

use bpfx_elf::{Extern, ExternKind, ExternUse};

/// Why a program cannot load because of the extern that instruction `u` refers to, if it
/// cannot: a strong `__kconfig` extern without a value (`unset`), a strong `__ksym` (bpfx has
/// no kernel to take it from), or a strong symbol no object defines. Weak ones are absent
/// instead: 0, or a call the verifier refuses where it is reachable.
pub(crate) fn refusal(externs: &[Extern], unset: &[usize], u: &ExternUse) -> Option<String> {
    let e = externs.get(u.index)?;
    if e.weak {
        return None;
    }
    let name = &e.name;
    match e.kind {
        ExternKind::Kconfig { .. } if unset.contains(&u.index) => Some(format!(
            "reads __kconfig extern `{name}`, which has no value (Vm::kconfig gives one; the \
             command line's --kconfig NAME=VALUE)"
        )),
        ExternKind::Kconfig { .. } => None,
        ExternKind::KsymVar => Some(format!(
            "reads kernel variable `{name}` (__ksym), which exists only in a kernel"
        )),
        ExternKind::KsymFunc if u.call => Some(format!(
            "calls kernel function `{name}` (__ksym kfunc), which exists only in a kernel"
        )),
        ExternKind::KsymFunc => Some(format!(
            "takes the address of kernel function `{name}` (__ksym kfunc), which exists only \
             in a kernel"
        )),
        ExternKind::Unresolved if u.call => Some(format!(
            "calls `{name}`, which no object defines (an extern left unresolved)"
        )),
        ExternKind::Unresolved => Some(format!(
            "refers to `{name}`, which no object defines (an extern left unresolved)"
        )),
    }
}

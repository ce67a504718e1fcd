//! One module per subcommand: its `Args` and its `run`.

pub(crate) mod asm;
pub(crate) mod disasm;

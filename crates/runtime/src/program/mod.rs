//! Objects, programs and the [`Vm`] that configures them: open → verify → compile or interpret
//! → run, each step a type of its own so the steps cannot be skipped or reordered.
//!
//! ```text
//! Vm ──open/load──► Object ──program(name)──► ProgramRef ──verify(mode)──► Verified
//!  (helpers, hooks,  (maps declared,           (context, input size)       │ (its maps created,
//!   memory limit)     none created)                                        │  bound to them)
//!                                                          compile() / interpret()
//!                                                                          ▼
//!                                           Program::run / run_xdp / run_ctx (tail calls here)
//! ```
//!
//! [`ProgramRef::load`] takes `verify` and `compile`/`interpret` in one step, as the [`Vm`]'s
//! [`VmConfig`] says.
//!
//! | module | holds |
//! |---|---|
//! | `vm` | [`Vm`], the builder of what every object it opens shares |
//! | `config` | [`VmConfig`]: engine, mode, budget and JIT options set once on the [`Vm`] |
//! | `elf` | ELF object → [`Object`] (kconfig values, static program-array slots, externs) |
//! | `globals` | global variables by name: [`Object::set_global`], [`Object::get_global`] |
//! | `object` | the API types [`Object`], [`ProgramDef`], [`ProgramInfo`]; what programs share |
//! | `link` | the maps a program names and their creation; [`ProgramRef`]: prepare, verify, bind |
//! | `verified` | [`Verified`] → interpreter or JIT code ([`jit_code_estimate`]), `Linked` |
//! | `run` | [`Program`]: each context's entry and the run loop that follows tail calls |
//! | `timers` | [`Object::run_timers`]: the expired timers' callbacks ([`TimersRun`]) |
//! | `prog_array` | `Map::set_program` / `clear_program` |

mod config;
mod elf;
mod globals;
mod link;
mod object;
mod prog_array;
mod run;
mod timers;
mod verified;
mod vm;

pub use config::{ConfigError, VmConfig};
pub use globals::Global;
pub use link::ProgramRef;
pub(crate) use link::create_map;
pub(crate) use object::Shared;
pub use object::{ContextSource, Object, ProgramDef, ProgramInfo};
pub use run::Program;
pub use timers::TimersRun;
pub(crate) use verified::{Code, Linked};
pub use verified::{Verified, jit_code_estimate};
pub use vm::Vm;

/// The engine a program runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Engine {
    /// The reference interpreter.
    Interpreter,
    /// The x86-64 JIT (the default of a [`Vm`]'s [`VmConfig`]).
    #[default]
    Jit,
}

impl Engine {
    /// Both engines, interpreter first.
    pub const ALL: [Engine; 2] = [Engine::Interpreter, Engine::Jit];

    /// Lower-case name (`interp`, `jit`), as the CLI spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Engine::Interpreter => "interp",
            Engine::Jit => "jit",
        }
    }
}

//! [`VmConfig`]: how the programs of a [`Vm`](crate::Vm) are verified, compiled and bounded,
//! set once on the `Vm` ([`Vm::engine`](crate::Vm::engine), [`Vm::mode`](crate::Vm::mode),
//! [`Vm::budget`](crate::Vm::budget), [`Vm::jit_options`](crate::Vm::jit_options)), with
//! impossible combinations refused as they are made ([`ConfigError`]).

use super::Engine;
use bpfx_exec::Budget;
use bpfx_jit::{CodeMemory, JitOptions};
use bpfx_verifier::Mode;

/// How the programs of a [`Vm`](crate::Vm) are prepared: what
/// [`ProgramRef::load`](crate::ProgramRef::load) does in one step, and the defaults of the
/// separate steps ([`Verified::compile`](crate::Verified::compile) compiles with
/// [`VmConfig::jit_options`], every program starts with [`VmConfig::budget`]).
///
/// # Invariants
/// Explicit JIT options only with [`Engine::Jit`]; [`JitOptions::unbounded`] only with
/// [`Budget::Unlimited`]. The builders that would break them return [`ConfigError`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmConfig {
    engine: Engine,
    mode: Mode,
    budget: Budget,
    /// The JIT options the embedder set, if any (`None`: the defaults).
    jit: Option<JitOptions>,
}

impl VmConfig {
    /// The engine [`ProgramRef::load`](crate::ProgramRef::load) prepares programs for
    /// (default: [`Engine::Jit`]).
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The verifier mode [`ProgramRef::load`](crate::ProgramRef::load) verifies with
    /// (default: [`Mode::Checked`]).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The budget every program prepared from the `Vm` starts with (default:
    /// [`Budget::Default`]).
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The JIT options code is compiled with: the ones set on the `Vm` (or the defaults), with
    /// the budget charge when the budget is a [`Budget::Limit`] (so the limit never meets code
    /// that cannot count it) and [`JitOptions::unbounded`] when it is [`Budget::Unlimited`]
    /// (so code for a program that may not terminate carries no charge it would never use).
    pub fn jit_options(&self) -> JitOptions {
        self.jit_options_from(self.jit.clone().unwrap_or_default())
    }

    /// `opts` with the budget charge following the budget, as [`VmConfig::jit_options`] says.
    pub(crate) fn jit_options_from(&self, opts: JitOptions) -> JitOptions {
        JitOptions {
            budget: opts.budget || matches!(self.budget, Budget::Limit(_)),
            unbounded: opts.unbounded || self.budget == Budget::Unlimited,
            ..opts
        }
    }

    pub(crate) fn set_engine(&mut self, engine: Engine) -> Result<(), ConfigError> {
        self.check(engine, self.budget, self.jit.as_ref())?;
        self.engine = engine;
        Ok(())
    }

    pub(crate) fn set_mode(&mut self, mode: Mode) {
        self.mode = mode;
    }

    pub(crate) fn set_budget(&mut self, budget: Budget) -> Result<(), ConfigError> {
        self.check(self.engine, budget, self.jit.as_ref())?;
        self.budget = budget;
        Ok(())
    }

    pub(crate) fn set_jit_options(&mut self, opts: JitOptions) -> Result<(), ConfigError> {
        self.check(self.engine, self.budget, Some(&opts))?;
        self.jit = Some(opts);
        Ok(())
    }

    /// Whether the three settings can hold together.
    fn check(
        &self,
        engine: Engine,
        budget: Budget,
        jit: Option<&JitOptions>,
    ) -> Result<(), ConfigError> {
        let Some(jit) = jit else {
            return Ok(());
        };
        if engine == Engine::Interpreter {
            return Err(ConfigError::JitOptionsForInterpreter {
                options: options_named(jit),
            });
        }
        if jit.unbounded && budget != Budget::Unlimited {
            return Err(ConfigError::UnboundedWithBudget { budget });
        }
        Ok(())
    }
}

/// The options `opts` sets, by name (`blinding, spectre`), or `default options`.
fn options_named(opts: &JitOptions) -> String {
    let names: Vec<&str> = [
        (opts.budget, "budget"),
        (opts.unbounded, "unbounded"),
        (opts.blinding, "blinding"),
        (opts.spectre, "spectre"),
        (opts.code_memory != CodeMemory::default(), "code_memory"),
    ]
    .into_iter()
    .filter_map(|(set, name)| set.then_some(name))
    .collect();
    if names.is_empty() {
        "default options".to_string()
    } else {
        names.join(", ")
    }
}

/// A [`Vm`](crate::Vm) setting that cannot hold with one made before: refused by the builder
/// that would make it, so a `Vm` never holds an impossible combination.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// JIT options (hardening, blinding, Spectre masking, code memory, the budget charge) with
    /// the interpreter engine, which compiles no code.
    #[error(
        "JIT options ({options}) with the interpreter engine: the interpreter compiles no code \
         to harden; choose Engine::Jit or leave the JIT options out"
    )]
    JitOptionsForInterpreter {
        /// The options set, by field name (`blinding, spectre`), or `default options`.
        options: String,
    },
    /// [`JitOptions::unbounded`] (no default budget compiled in) with a budget other than
    /// [`Budget::Unlimited`]: the `Vm`'s budget says whether runs are bounded, once.
    #[error(
        "JitOptions::unbounded lets a program that may not terminate run forever, but the budget \
         is {budget:?}: set Budget::Unlimited on the Vm instead (the JIT options follow it)"
    )]
    UnboundedWithBudget {
        /// The budget set.
        budget: Budget,
    },
}

//! A verified and bound program ([`Verified`]) becomes runnable code for an engine: the
//! interpreter, or JIT code charged to the memory limit ([`Linked`], what a program-array slot
//! holds).

use super::{Engine, Program, Shared};
use crate::context::Context;
use crate::error::Error;
use crate::map::MapKind;
use crate::memory::Charge;
use bpfx_exec::SharedMem;
use bpfx_verifier::VerifiedProgram;
use std::sync::Arc;

/// A verified program, bound to its object's maps, ready to be compiled or interpreted.
#[derive(Clone)]
pub struct Verified {
    pub(super) shared: Arc<Shared>,
    pub(super) name: String,
    pub(super) context: Context,
    pub(super) prog: VerifiedProgram,
    pub(super) blocks: Vec<Arc<SharedMem>>,
    pub(super) outers: Vec<usize>,
    /// Programs for the empty statically-initialised program-array slots this program
    /// reaches: (map index, key, program), filled when this one gets its engine.
    pub(super) static_slots: Vec<(usize, u32, Verified)>,
}

impl std::fmt::Debug for Verified {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verified")
            .field("name", &self.name)
            .field("context", &self.context)
            .finish()
    }
}

impl Verified {
    /// The verified (and bound) program, with the verifier's facts.
    pub fn program(&self) -> &VerifiedProgram {
        &self.prog
    }

    /// Prepares it as the [`Vm`](crate::Vm) it comes from says
    /// ([`VmConfig`](crate::VmConfig)): interpreted, or compiled with the `Vm`'s JIT options
    /// (the budget charge following its budget), starting with the `Vm`'s budget.
    pub fn load(self) -> Result<Program, Error> {
        match self.shared.config.engine() {
            Engine::Interpreter => Ok(self.interpret()),
            Engine::Jit => self.compile(),
        }
    }

    /// Runs it on the reference interpreter, starting with the [`Vm`](crate::Vm)'s budget.
    pub fn interpret(mut self) -> Program {
        for (map, slot, target) in std::mem::take(&mut self.static_slots) {
            let p = target.interpret();
            self.fill_static_slot(map, slot, &p);
        }
        self.finish(Code::Interp)
    }

    /// Puts `p` in slot `slot` of map `map` unless something got there first.
    fn fill_static_slot(&self, map: usize, slot: u32, p: &Program) {
        // Verification created every map the program names, this one included.
        let Some(m) = self.shared.maps[map].created() else {
            return;
        };
        if m.slot(u64::from(slot)).is_err() {
            // In range (the loader checked the key against max_entries) and a program of
            // this object: it cannot fail.
            let _ = m.set_slot(slot, Some(p.linked.clone()));
        }
    }

    /// Compiles it to x86-64 code with the [`Vm`](crate::Vm)'s JIT options
    /// ([`VmConfig::jit_options`](crate::VmConfig::jit_options): the defaults unless the `Vm`
    /// set some); accesses the verifier proved in bounds lose their guards (it never proves a
    /// store into a read-only map, so those keep the guard that refuses them).
    pub fn compile(self) -> Result<Program, Error> {
        let opts = self.shared.config.jit_options();
        self.compile_with(&opts)
    }

    /// Compiles it with options (for example the instruction budget, or dual-mapped code
    /// memory: `bpfx_jit::CodeMemory`) instead of the [`Vm`](crate::Vm)'s. The program starts
    /// with the `Vm`'s budget; when that is a [`Budget::Limit`](crate::Budget::Limit), the
    /// budget charge is compiled in whatever `opts` says.
    ///
    /// The code is charged to the [`Vm`](crate::Vm)'s memory limit: an estimate before compiling
    /// ([`jit_code_estimate`]), then its real size in whole pages ([`Error::MemoryLimit`] if
    /// even the estimate does not fit, or the real size turns out larger and does not).
    pub fn compile_with(mut self, opts: &bpfx_jit::JitOptions) -> Result<Program, Error> {
        let opts = &bpfx_jit::JitOptions {
            budget: opts.budget
                || matches!(self.shared.config.budget(), bpfx_exec::Budget::Limit(_)),
            ..opts.clone()
        };
        for (map, slot, target) in std::mem::take(&mut self.static_slots) {
            let p = target.compile_with(opts)?;
            self.fill_static_slot(map, slot, &p);
        }
        let what = || format!("program `{}`: JIT code", self.name);
        let estimate = jit_code_estimate(self.prog.program().len());
        let mut charge = self.shared.pool.charge(what, estimate)?;
        let jit = bpfx_jit::compile_with_maps(&self.prog, opts, &self.inline_maps()).map_err(
            |source| Error::Jit {
                program: self.name.clone(),
                source,
            },
        )?;
        let real = (jit.code_len() as u64).next_multiple_of(PAGE_BYTES);
        if real > estimate {
            charge = self.shared.pool.charge(what, real)?;
        } else {
            charge.shrink_to(real);
        }
        Ok(self.finish_with(Code::Jit(Box::new(jit)), Some(charge)))
    }

    /// The arrays whose `map_lookup_elem` calls the JIT computes in the code: every ARRAY and
    /// PERCPU_ARRAY map the program's runs are lent the block of, unless the embedder replaced
    /// `map_lookup_elem` with a helper of its own. The standard helper computes the same
    /// address ([`crate::map::Map::array_layout`]; for a per-CPU array on the run's CPU, which
    /// the run hands the JIT), so both engines agree. And the HASH, LRU_HASH, PERCPU_HASH and
    /// LRU_PERCPU_HASH maps, whose `map_lookup_elem` calls the code makes directly
    /// ([`bpfx_jit::DirectLookup`]: the map's own lookup with the key's bytes and the run's
    /// CPU, as the standard helper calls it), and their `map_update_elem` and
    /// `map_delete_elem` calls likewise unless the embedder replaced either.
    fn inline_maps(&self) -> bpfx_jit::InlineMaps {
        let lookup = crate::helpers::MAP_LOOKUP_ELEM;
        let mut inline = bpfx_jit::InlineMaps::default();
        if self.shared.custom.iter().any(|c| c.id == lookup) {
            return inline;
        }
        inline = bpfx_jit::InlineMaps::new(lookup);
        let (update, delete) = (
            crate::helpers::MAP_UPDATE_ELEM,
            crate::helpers::MAP_DELETE_ELEM,
        );
        if !self
            .shared
            .custom
            .iter()
            .any(|c| c.id == update || c.id == delete)
        {
            inline = inline.with_update_ids(update, delete);
        }
        for (i, m) in self.shared.maps.iter().enumerate() {
            let Some((block, max_entries, stride, cpus)) = m
                .created()
                .and_then(|m| m.array_layout().map(|(b, n, s, c)| (b.clone(), n, s, c)))
            else {
                continue;
            };
            if !self.blocks.iter().any(|b| Arc::ptr_eq(b, &block)) {
                continue;
            }
            let array = match cpus {
                None => bpfx_jit::InlineArray::new(block, max_entries, stride),
                Some(c) => bpfx_jit::InlineArray::per_cpu(block, max_entries, stride, c),
            };
            if let Some(a) = array {
                inline = inline.with_array(crate::helpers::map_handle(i), a);
            }
        }
        // The hash maps' lookups: a direct call of the map's own lookup, which is what the
        // standard helper does after finding the map by its handle and reading the key
        // (`map.prog_lookup` on the run's CPU).
        for (i, m) in self.shared.maps.iter().enumerate() {
            let Some(map) = m.created() else {
                continue;
            };
            let per_cpu = match map.kind() {
                MapKind::Hash | MapKind::LruHash => false,
                MapKind::PerCpuHash | MapKind::LruPerCpuHash => true,
                _ => continue,
            };
            let (key_size, value_size) = (map.key_size(), map.value_size());
            let (m, u, d) = (map.clone(), map.clone(), map.clone());
            let lookup: Arc<bpfx_jit::DirectLookupFn> =
                Arc::new(move |key: &[u8], cpu: u32| m.prog_lookup(key, cpu).unwrap_or(0));
            // `map_update_elem` and `map_delete_elem` likewise: the map's own update and
            // delete, their errors as the helpers return them.
            let update: Arc<bpfx_jit::DirectUpdateFn> =
                Arc::new(move |key: &[u8], value: &[u8], flags: u64, cpu: u32| {
                    u.prog_update(key, value, flags, cpu)
                        .map_or_else(|e| e.ret(), |()| 0)
                });
            let delete: Arc<bpfx_jit::DirectDeleteFn> =
                Arc::new(move |key: &[u8]| d.prog_delete(key).map_or_else(|e| e.ret(), |()| 0));
            let direct = bpfx_jit::DirectLookup::new(key_size, per_cpu, lookup)
                .and_then(|l| l.with_update(value_size, update))
                .map(|l| l.with_delete(delete));
            if let Some(d) = direct {
                inline = inline.with_direct(crate::helpers::map_handle(i), d);
            }
        }
        inline
    }

    /// [`Verified::interpret`] or [`Verified::compile`] (with the budget charge when `budget`,
    /// or when the [`Vm`](crate::Vm)'s budget is a limit), whatever the `Vm`'s engine.
    pub fn engine(self, engine: Engine, budget: bool) -> Result<Program, Error> {
        match engine {
            Engine::Interpreter => Ok(self.interpret()),
            Engine::Jit => {
                let opts = self.shared.config.jit_options();
                self.compile_with(&bpfx_jit::JitOptions {
                    budget: opts.budget || budget,
                    ..opts
                })
            }
        }
    }

    fn finish(self, code: Code) -> Program {
        self.finish_with(code, None)
    }

    fn finish_with(self, code: Code, charge: Option<Charge>) -> Program {
        let packet_loads = self
            .prog
            .program()
            .iter()
            .any(|(_, op)| matches!(op, bpfx_bytecode::Op::LoadPacket { .. }));
        let linked = Arc::new(Linked {
            packet_loads,
            object_id: self.shared.id,
            name: self.name,
            context: self.context,
            prog: self.prog,
            code,
            blocks: self.blocks,
            outers: self.outers,
            _charge: charge,
        });
        let budget = self.shared.config.budget();
        let mut p = Program::new(linked, self.shared);
        p.set_budget(budget);
        p
    }
}

/// Page size the JIT's code memory comes in, in bytes.
const PAGE_BYTES: u64 = 4096;

/// What JIT code is charged before it exists, in bytes, for a program of `slots` instruction
/// slots: each instruction's worst case hot and cold code ([`bpfx_jit::MAX_INSN_BYTES`],
/// [`bpfx_jit::MAX_COLD_BYTES`]) plus a page for the prologue, epilogue and trap stubs. An
/// estimate, not a bound (versioned loops are emitted twice): the real size is charged once
/// known.
pub fn jit_code_estimate(slots: usize) -> u64 {
    let per_insn = (bpfx_jit::MAX_INSN_BYTES + bpfx_jit::MAX_COLD_BYTES) as u64;
    (slots as u64)
        .saturating_mul(per_insn)
        .saturating_add(PAGE_BYTES)
}

pub(crate) enum Code {
    Interp,
    Jit(Box<bpfx_jit::JitProgram>),
}

/// A program ready to run: what a program array slot holds.
pub(crate) struct Linked {
    pub(super) object_id: u64,
    pub(crate) name: String,
    pub(super) context: Context,
    pub(crate) prog: VerifiedProgram,
    pub(super) code: Code,
    /// The shared memory of the maps it names: exactly what the engines let it touch (with
    /// the blocks of the inner maps of `outers` at the start of each run).
    pub(super) blocks: Vec<Arc<SharedMem>>,
    /// The indices of the maps of maps it names.
    pub(super) outers: Vec<usize>,
    /// The memory limit's charge for the JIT code, given back with the code.
    _charge: Option<Charge>,
    /// Whether it has legacy packet loads (`ldabs`/`ldind`), which both engines bound by the
    /// run's input: its TC runs keep the packet where it starts ([`crate::Program::run_tc_packet`]).
    pub(crate) packet_loads: bool,
}

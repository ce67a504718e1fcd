//! The object API of `bpfx.h` behind its handles, libbpf-style: a `bpfx_object` (an ELF object
//! whose programs share its maps), `bpfx_program`s prepared from it with options, and
//! `bpfx_map` handles.
//!
//! ```text
//! bpfx_object_open_mem/_file(opts) ──► Obj ──program(name, opts)──► Prog ──run──► result/trap
//!                                       │                             ▲
//!                                       └──map(name)──► MapHandle ─set_program(index)┘
//!                                                       (lookup, update, delete, next key,
//!                                                        ring buffer and perf consumers)
//! ```
//!
//! Each handle owns what it needs by reference count: a program holds its code and the
//! object's maps, a map handle its map, so the handles may be freed in any order (freeing the
//! object invalidates no program or map taken from it). All maps of an object are shared by
//! every program prepared from it.

use crate::error::{Fail, Status, c_string};
use crate::vm::{
    EngineCode, ModeCode, TrapInfo, finish_run, map_fail, run_memory, run_tc_buffer,
    run_xdp_buffer, tc_code, with_name, xdp_rooms,
};
use runtime::{Budget, CodeMemory, Engine, JitOptions, Map, MapKind, Object, Program, UpdateFlag};
use std::ffi::CString;
use std::sync::Arc;

/// `BPFX_HARDEN_BLINDING`: constant blinding in the JIT's code.
pub(crate) const HARDEN_BLINDING: u32 = 1;
/// `BPFX_HARDEN_SPECTRE`: Spectre v1 masking after every bounds guard.
pub(crate) const HARDEN_SPECTRE: u32 = 2;
/// `BPFX_CODE_MEMORY_SEALED`: the program's own mapping, sealed read+execute.
pub(crate) const CODE_MEMORY_SEALED: u32 = 0;
/// `BPFX_CODE_MEMORY_DUAL_MAPPED`: a block of the dual-mapped arena.
pub(crate) const CODE_MEMORY_DUAL_MAPPED: u32 = 1;

/// `bpfx_object_opts`, read from C (every field 0 means its default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ObjectOpts {
    /// The memory limit of the object's maps, global data and code; 0: the default.
    pub(crate) mem_limit: u64,
    /// `__kconfig` values by name ([`runtime::Vm::kconfig`]).
    pub(crate) kconfig: Vec<(String, String)>,
    /// Map sizes by name ([`runtime::Vm::max_entries`]); each must name a map of the object.
    pub(crate) max_entries: Vec<(String, u32)>,
    /// Inner map templates by the name of their map of maps ([`runtime::Vm::inner_map`]);
    /// each must name a map of maps of the object.
    pub(crate) inner_maps: Vec<(String, runtime::MapSpec)>,
}

/// `bpfx_program_opts`, read from C (every field 0 means its default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ProgOpts {
    /// A `BPFX_ENGINE_*`.
    pub(crate) engine: u32,
    /// A `BPFX_MODE_*`.
    pub(crate) mode: u32,
    /// 0 or `BPFX_BUDGET_DEFAULT`, `BPFX_BUDGET_UNLIMITED`, or a number of instructions.
    pub(crate) budget: u64,
    /// `BPFX_HARDEN_*` flags (JIT only).
    pub(crate) hardening: u32,
    /// A `BPFX_CODE_MEMORY_*` (JIT only).
    pub(crate) code_memory: u32,
    /// A `BPFX_CONTEXT_*` (0: the section's).
    pub(crate) context: u32,
    /// The size of a struct context, and its packet fields' offsets.
    pub(crate) ctx_size: u32,
    pub(crate) data_off: u32,
    pub(crate) data_end_off: u32,
    /// The input size verification proves accesses against (0: unknown).
    pub(crate) input_size: u64,
}

impl ProgOpts {
    /// The context these options ask for (`None`: the section's).
    fn context(&self) -> Result<Option<runtime::Context>, Fail> {
        let u16_of = |v: u32, what: &str| {
            u16::try_from(v).map_err(|_| Fail::arg(format!("{what} {v}: at most 65535")))
        };
        crate::vm::context_from_code(
            self.context,
            u16_of(self.ctx_size, "ctx_size")?,
            u16_of(self.data_off, "data_off")?,
            u16_of(self.data_end_off, "data_end_off")?,
        )
    }

    /// The engine, the mode, the budget and the JIT options these options ask for, as a
    /// [`runtime::Vm`]'s configuration decides them (the budget charge following the budget);
    /// impossible combinations (hardening or code memory for the interpreter, unknown codes)
    /// refused.
    fn resolve(&self) -> Result<(Engine, runtime::Mode, Budget, JitOptions), Fail> {
        let engine = EngineCode::from_code(self.engine)?;
        let mode = ModeCode::from_code(self.mode)?;
        let budget = match self.budget {
            0 | crate::vm::BUDGET_DEFAULT => Budget::Default,
            crate::vm::BUDGET_UNLIMITED => Budget::Unlimited,
            n => Budget::Limit(n),
        };
        if self.hardening & !(HARDEN_BLINDING | HARDEN_SPECTRE) != 0 {
            return Err(Fail::arg(format!(
                "hardening {:#x}: only BPFX_HARDEN_BLINDING and BPFX_HARDEN_SPECTRE exist",
                self.hardening
            )));
        }
        let code_memory = match self.code_memory {
            CODE_MEMORY_SEALED => CodeMemory::Sealed,
            CODE_MEMORY_DUAL_MAPPED => CodeMemory::DualMapped,
            c => return Err(Fail::arg(format!("{c} is not a bpfx_code_memory"))),
        };
        let refused = |e: runtime::ConfigError| Fail::arg(e.to_string());
        let mut vm = runtime::Vm::new()
            .engine(engine)
            .map_err(refused)?
            .mode(mode)
            .budget(budget)
            .map_err(refused)?;
        // Options only when asked for: the interpreter refuses any, even the defaults.
        if self.hardening != 0 || self.code_memory != 0 {
            vm = vm
                .jit_options(JitOptions {
                    blinding: self.hardening & HARDEN_BLINDING != 0,
                    spectre: self.hardening & HARDEN_SPECTRE != 0,
                    code_memory,
                    ..JitOptions::default()
                })
                .map_err(refused)?;
        }
        let c = vm.config();
        Ok((c.engine(), c.mode(), c.budget(), c.jit_options()))
    }
}

/// One `bpfx_object`.
pub(crate) struct Obj {
    obj: Object,
    /// The programs' and maps' names, as C strings for the name accessors.
    program_names: Vec<CString>,
    map_names: Vec<CString>,
}

impl Obj {
    /// Loads an ELF object with the standard helpers.
    pub(crate) fn open(elf: &[u8], opts: ObjectOpts) -> Result<Obj, Fail> {
        Obj::open_with(runtime::Vm::new(), elf, opts)
    }

    /// Loads an ELF object with what `vm` holds: the standard helpers and those registered
    /// on it, its memory limit (unless `opts` sets one), its forwarding table.
    pub(crate) fn open_with(
        mut vm: runtime::Vm,
        elf: &[u8],
        opts: ObjectOpts,
    ) -> Result<Obj, Fail> {
        if elf.is_empty() {
            return Err(Fail::arg("the ELF object is empty (length 0)"));
        }
        if opts.mem_limit != 0 {
            vm = vm.mem_limit(opts.mem_limit);
        }
        for (name, value) in &opts.kconfig {
            vm = vm.kconfig(name, value);
        }
        for (name, n) in &opts.max_entries {
            vm = vm.max_entries(name, *n);
        }
        for (name, template) in &opts.inner_maps {
            vm = vm.inner_map(name, template.clone());
        }
        let obj = vm.load(elf)?;
        // Every name given must be one of the object's maps (of maps, for a template): a
        // misspelt name would otherwise leave the object as declared without a word.
        let unknown = |field: &str,
                       name: &str,
                       (what, whats): (&str, &str),
                       of: &dyn Fn(Option<MapKind>) -> bool| {
            let names: Vec<&str> = obj
                .maps()
                .filter(|m| of(m.kind()))
                .map(|m| m.name())
                .collect();
            Fail::arg(format!(
                "opts.{field}: the object has no {what} named `{name}` (its {whats}: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))
        };
        let is_map_of_maps =
            |k: Option<MapKind>| matches!(k, Some(MapKind::ArrayOfMaps | MapKind::HashOfMaps));
        for (name, _) in &opts.max_entries {
            if !obj.maps().any(|m| m.name() == name) {
                return Err(unknown("max_entries", name, ("map", "maps"), &|_| true));
            }
        }
        for (name, _) in &opts.inner_maps {
            if !obj
                .maps()
                .any(|m| m.name() == name && is_map_of_maps(m.kind()))
            {
                return Err(unknown(
                    "inner_maps",
                    name,
                    ("map of maps", "maps of maps"),
                    &is_map_of_maps,
                ));
            }
        }
        let program_names = obj.programs().map(|p| c_string(p.name)).collect();
        let map_names = obj.maps().map(|m| c_string(m.name())).collect();
        Ok(Obj {
            obj,
            program_names,
            map_names,
        })
    }

    /// The name of program `index` in the object's order.
    pub(crate) fn program_name(&self, index: usize) -> Option<&CString> {
        self.program_names.get(index)
    }

    /// The name of map `index` in the object's order.
    pub(crate) fn map_name(&self, index: usize) -> Option<&CString> {
        self.map_names.get(index)
    }

    /// Program `name` (by name, else by section) verified and prepared with `opts`.
    pub(crate) fn program(&self, name: &str, opts: ProgOpts) -> Result<Prog, Fail> {
        let (engine, mode, budget, jit) = opts.resolve()?;
        let mut r = self.obj.program(name)?;
        if let Some(ctx) = opts.context()? {
            r = r.context(ctx);
        }
        if opts.input_size != 0 {
            r = r.input_size(opts.input_size);
        }
        let verified = r.verify(mode)?;
        let mut prog = match engine {
            Engine::Interpreter => verified.interpret(),
            Engine::Jit => verified.compile_with(&jit)?,
        };
        prog.set_budget(budget);
        Ok(Prog {
            name: c_string(prog.name()),
            prog,
            budget,
            trap: None,
            redirect: None,
        })
    }

    /// Sets global variable `name` from its bytes (exactly its size), as
    /// [`Object::set_global`] does.
    pub(crate) fn set_global(&self, name: &str, value: &[u8]) -> Result<(), Fail> {
        Ok(self.obj.set_global_bytes(name, value)?)
    }

    /// Reads global variable `name` into `out` (exactly its size).
    pub(crate) fn get_global(&self, name: &str, out: &mut [u8]) -> Result<(), Fail> {
        Ok(self.obj.get_global_bytes(name, out)?)
    }

    /// Map `name` (created now if no program created it yet).
    pub(crate) fn map(&self, name: &str) -> Result<MapHandle, Fail> {
        let map = self.obj.map(name)?;
        Ok(MapHandle {
            name: c_string(map.name()),
            map,
        })
    }
}

/// One `bpfx_program`: prepared code with the object's maps.
pub(crate) struct Prog {
    prog: Program,
    name: CString,
    budget: Budget,
    trap: Option<TrapInfo>,
    /// Where the last run redirected its packet, with the map's name as a C string.
    redirect: Option<(runtime::RedirectTarget, CString)>,
}

impl Prog {
    /// Its name.
    pub(crate) fn name(&self) -> &CString {
        &self.name
    }

    /// Runs it on `mem` as `bpfx_run` does, every run with the whole budget.
    pub(crate) fn run(&mut self, mem: &mut [u8]) -> Result<u64, Fail> {
        self.prog.set_budget(self.budget);
        let r = run_memory(&mut self.prog, mem)?;
        self.redirect = self.prog.last_redirect().map(with_name);
        finish_run(r, &mut self.trap)
    }

    /// Runs an XDP program on a packet buffer as `bpfx_run_xdp` does: the action, and the
    /// final frame's start, length and metadata length.
    pub(crate) fn run_xdp(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
    ) -> Result<(u64, usize, usize, usize), Fail> {
        let rooms = xdp_rooms(buf, start, len)?;
        self.prog.set_budget(self.budget);
        let (r, frame) = run_xdp_buffer(&mut self.prog, buf, start, len, rooms)?;
        self.redirect = self.prog.last_redirect().map(with_name);
        let action = finish_run(r, &mut self.trap)?;
        Ok((action, frame.0, frame.1, frame.2))
    }

    /// Runs a TC program on a packet buffer as `bpfx_run_tc` does: the verdict, and the
    /// final packet's start and length; `meta` gets the metadata after the run.
    pub(crate) fn run_tc(
        &mut self,
        buf: &mut [u8],
        start: usize,
        len: usize,
        meta: &mut runtime::SkbMeta,
    ) -> Result<(i32, usize, usize), Fail> {
        let rooms = xdp_rooms(buf, start, len)?;
        self.prog.set_budget(self.budget);
        let (r, frame) = run_tc_buffer(&mut self.prog, buf, start, len, rooms, meta)?;
        self.redirect = self.prog.last_redirect().map(with_name);
        let action = finish_run(r, &mut self.trap)?;
        Ok((tc_code(action), frame.0, frame.1))
    }

    /// The last run's redirect target.
    pub(crate) fn redirect(&self) -> Option<&(runtime::RedirectTarget, CString)> {
        self.redirect.as_ref()
    }

    /// Runs it with a struct context and a packet, as `bpfx_run_ctx` does.
    pub(crate) fn run_ctx(&mut self, ctx: &mut [u8], packet: &mut [u8]) -> Result<u64, Fail> {
        self.prog.set_budget(self.budget);
        let r = self.prog.run_ctx(ctx, packet);
        finish_run(r, &mut self.trap)
    }

    /// The trap of the last run, if it trapped.
    pub(crate) fn trap(&self) -> Result<&TrapInfo, Fail> {
        self.trap
            .as_ref()
            .ok_or_else(|| Fail::state("the last run did not trap"))
    }
}

/// One `bpfx_map`.
pub(crate) struct MapHandle {
    map: Arc<Map>,
    name: CString,
}

impl MapHandle {
    /// Its name.
    pub(crate) fn name(&self) -> &CString {
        &self.name
    }

    /// The map itself.
    pub(crate) fn map(&self) -> &Map {
        &self.map
    }

    /// A map of no object (`bpfx_map_create`), named `name`, of `spec`'s shape checked as the
    /// kernel checks a map it creates.
    pub(crate) fn create(spec: runtime::MapSpec) -> Result<MapHandle, Fail> {
        let name = c_string(&spec.name);
        let what = spec.name.clone();
        let map = Map::new(spec)
            .map_err(|reason| Fail::new(Status::Map, format!("map `{what}`: {reason}")))?;
        Ok(MapHandle {
            map: Arc::new(map),
            name,
        })
    }

    /// Stores `inner` under `key` of this map of maps (`flags` as [`MapHandle::update`]'s).
    pub(crate) fn set_inner(&self, key: &[u8], inner: &MapHandle, flags: u64) -> Result<(), Fail> {
        let flag = update_flag(&self.map, flags)?;
        self.map
            .set_inner_with(key, &inner.map, flag)
            .map_err(|e| self.fail(e))
    }

    fn fail(&self, e: runtime::MapError) -> Fail {
        map_fail(self.map.name(), e)
    }

    /// The value under `key`, copied into `out` (exactly the host value size).
    pub(crate) fn lookup(&self, key: &[u8], out: &mut [u8]) -> Result<(), Fail> {
        let want = self.map.host_value_size();
        if out.len() != want {
            return Err(Fail::arg(format!(
                "map `{}`: the value buffer is {} bytes, the map's values are {want}",
                self.map.name(),
                out.len()
            )));
        }
        let value = self.map.lookup(key).map_err(|e| self.fail(e))?;
        let value = value.ok_or_else(|| {
            Fail::new(
                Status::NotFound,
                format!("map `{}`: no entry with this key", self.map.name()),
            )
        })?;
        out.copy_from_slice(&value);
        Ok(())
    }

    /// Stores `value` under `key` (`flags`: 0 any, 1 create only, 2 replace only).
    pub(crate) fn update(&self, key: &[u8], value: &[u8], flags: u64) -> Result<(), Fail> {
        let flag = update_flag(&self.map, flags)?;
        self.map.update(key, value, flag).map_err(|e| self.fail(e))
    }

    /// Removes `key`.
    pub(crate) fn delete(&self, key: &[u8]) -> Result<(), Fail> {
        self.map.delete(key).map_err(|e| self.fail(e))
    }

    /// `BPF_MAP_GET_NEXT_KEY`: the key after `key` (the first for `None` or a key not in the
    /// map) into `next` (exactly the key size); `BPFX_ERR_NOT_FOUND` after the last key.
    pub(crate) fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> Result<(), Fail> {
        // First what the map says (a map without keys, a key of the wrong size), then the
        // caller's buffer.
        let found = self.map.next_key(key).map_err(|e| self.fail(e))?;
        let size = self.map.key_size() as usize;
        if next.len() != size {
            return Err(Fail::arg(format!(
                "map `{}`: the next-key buffer is {} bytes, the map's keys are {size}",
                self.map.name(),
                next.len()
            )));
        }
        match found {
            Some(k) => {
                next.copy_from_slice(&k);
                Ok(())
            }
            None => Err(Fail::new(
                Status::NotFound,
                format!(
                    "map `{}`: no key after this one (ENOENT: the walk is over)",
                    self.map.name()
                ),
            )),
        }
    }

    /// The oldest ready record of a ring buffer, if one waits.
    pub(crate) fn ring_pop(&self) -> Result<Option<Vec<u8>>, Fail> {
        if self.map.kind() != runtime::MapKind::RingBuf {
            return Err(Fail::new(
                Status::Map,
                format!("map `{}` is not a ring buffer", self.map.name()),
            ));
        }
        self.map.pop_record().map_err(|e| self.fail(e))
    }

    /// The next record of a perf event array, if one waits.
    pub(crate) fn perf_next(&self) -> Result<Option<runtime::PerfEvent>, Fail> {
        self.map.perf_next().map_err(|e| self.fail(e))
    }

    /// Puts `prog` into slot `index` of this program array (a program of the same object).
    pub(crate) fn set_program(&self, index: u32, prog: &Prog) -> Result<(), Fail> {
        Ok(self.map.set_program(index, &prog.prog)?)
    }

    /// Empties slot `index` of this program array.
    pub(crate) fn clear_program(&self, index: u32) -> Result<(), Fail> {
        if self.map.kind() != runtime::MapKind::ProgArray {
            return Err(Fail::new(
                Status::Map,
                format!("map `{}` is not a program array", self.map.name()),
            ));
        }
        Ok(self.map.clear_program(index)?)
    }
}

/// An update's `flags` (0 any, 1 create only, 2 replace only) for map `map`.
fn update_flag(map: &Map, flags: u64) -> Result<UpdateFlag, Fail> {
    UpdateFlag::from_raw(flags).ok_or_else(|| {
        Fail::arg(format!(
            "map `{}`: invalid update flags {flags:#x}",
            map.name()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(engine: u32, hardening: u32, code_memory: u32) -> ProgOpts {
        ProgOpts {
            engine,
            hardening,
            code_memory,
            ..ProgOpts::default()
        }
    }

    #[test]
    fn jit_options_are_refused_for_the_interpreter() {
        assert_eq!(
            opts(0, HARDEN_BLINDING, 0).resolve().unwrap_err().status,
            Status::Argument
        );
        assert_eq!(
            opts(0, 0, CODE_MEMORY_DUAL_MAPPED)
                .resolve()
                .unwrap_err()
                .status,
            Status::Argument
        );
        let (_, _, _, jit) = opts(1, HARDEN_BLINDING | HARDEN_SPECTRE, CODE_MEMORY_DUAL_MAPPED)
            .resolve()
            .unwrap();
        assert!(jit.blinding && jit.spectre && jit.code_memory == CodeMemory::DualMapped);
        assert!(opts(1, 4, 0).resolve().is_err());
        assert!(opts(1, 0, 2).resolve().is_err());
        assert!(opts(2, 0, 0).resolve().is_err());
    }

    #[test]
    fn zero_budget_is_the_default_and_a_limit_asks_for_the_charge() {
        let b = |budget| {
            ProgOpts {
                engine: 1,
                budget,
                ..ProgOpts::default()
            }
            .resolve()
            .unwrap()
        };
        assert_eq!(b(0).2, Budget::Default);
        assert!(!b(0).3.budget && !b(0).3.unbounded);
        assert_eq!(b(crate::vm::BUDGET_UNLIMITED).2, Budget::Unlimited);
        assert!(b(crate::vm::BUDGET_UNLIMITED).3.unbounded);
        assert_eq!(b(50).2, Budget::Limit(50));
        assert!(b(50).3.budget);
    }
}

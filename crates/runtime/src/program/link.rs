//! Linking: the maps a program names, their creation, and [`ProgramRef`], which prepares a
//! program for its context and maps, verifies it and binds it to them.

use super::{Object, ProgramDef, Verified};
use crate::context::Context;
use crate::error::Error;
use crate::helpers::{self};
use crate::map::{Map, MapKind};
use crate::memory::Pool;
use crate::object_map::ObjectMap;
use bpfx_bytecode::{Imm64, Op, Pc};
use bpfx_verifier::{Config, MapDef, MapRef, MapTable, Mode, VerifiedProgram, VerifierLog};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The indices of the maps the `lddw` instructions of `prog` name, in order, each checked to
/// exist and to be one bpfx can create.
pub(super) fn used_maps(
    name: &str,
    prog: &bpfx_bytecode::Program,
    maps: &[ObjectMap],
) -> Result<Vec<usize>, Error> {
    let mut used = BTreeSet::new();
    for (pc, op) in prog.iter() {
        let Op::LoadImm64 { value, .. } = *op else {
            continue;
        };
        let link_err = |reason: String| Error::Link {
            program: name.to_string(),
            pc,
            insn: op.to_string(),
            reason,
        };
        let (idx, value_off) = match value {
            Imm64::Value(_) | Imm64::Func { .. } => continue,
            Imm64::MapIdx(i) => (i, None),
            Imm64::MapIdxValue { idx, off } => (idx, Some(off)),
            Imm64::MapFd(_) | Imm64::MapValue { .. } => {
                return Err(link_err(
                    "maps are named by index (map_idx), not by file descriptor".into(),
                ));
            }
            Imm64::BtfId(_) => {
                return Err(link_err("BTF variables (ksyms) are not supported".into()));
            }
        };
        let map = usize::try_from(idx)
            .ok()
            .and_then(|i| maps.get(i).map(|m| (i, m)));
        let Some((i, map)) = map else {
            return Err(link_err(format!(
                "no map with index {idx} (the object has {})",
                maps.len()
            )));
        };
        if let Err(reason) = map.status() {
            return Err(Error::MapUnsupported {
                program: name.to_string(),
                map: map.name().to_string(),
                reason: reason.to_string(),
            });
        }
        if let Some(off) = value_off
            && (map.kind() != Some(MapKind::Array) || off >= map.value_size())
        {
            return Err(link_err(format!(
                "offset {off} is not inside the value of {} map `{}`",
                map.type_name(),
                map.name()
            )));
        }
        used.insert(i);
        // A map of maps' statically initialised inner maps are created with it.
        for &(_, j) in &map.map_inits {
            let inner = maps
                .get(j)
                .ok_or_else(|| link_err(format!("map `{}`: no map with index {j}", map.name())))?;
            if let Err(reason) = inner.status() {
                return Err(Error::MapUnsupported {
                    program: name.to_string(),
                    map: inner.name().to_string(),
                    reason: reason.to_string(),
                });
            }
            used.insert(j);
        }
    }
    Ok(used.into_iter().collect())
}

/// Creates map `i` of `maps` (charged to `pool`); a map of maps gets its static inner maps
/// (created too) in their slots before anyone sees it.
pub(crate) fn create_map<'m>(
    maps: &'m [ObjectMap],
    pool: &Arc<Pool>,
    i: usize,
) -> Result<&'m Arc<Map>, Error> {
    let m = &maps[i];
    m.create_init(pool, |outer| {
        for &(key, j) in &m.map_inits {
            let inner = maps
                .get(j)
                .filter(|_| j != i)
                .ok_or_else(|| Error::MapSpec {
                    map: m.name().to_string(),
                    reason: format!("slot {key}: no inner map with index {j}"),
                })?;
            let created = inner.create(pool)?;
            outer
                .set_inner(&key.to_le_bytes(), created)
                .map_err(|e| Error::MapSpec {
                    map: m.name().to_string(),
                    reason: format!("slot {key}: map `{}`: {e}", inner.name()),
                })?;
        }
        Ok(())
    })
}

/// A program chosen from an object, not yet verified.
#[derive(Debug)]
pub struct ProgramRef<'o> {
    pub(super) obj: &'o Object,
    pub(super) def: &'o ProgramDef,
    pub(super) context: Context,
    pub(super) input_size: Option<u64>,
}

impl<'o> ProgramRef<'o> {
    /// Sets the context (default: what the section, or failing that the BTF, implies:
    /// [`Object::program`]).
    pub fn context(mut self, context: Context) -> ProgramRef<'o> {
        self.context = context;
        self
    }

    /// For a plain-memory program: the size of the input it will get, so the verifier can
    /// prove accesses against it. Runs on shorter inputs are then refused. In `Mode::Checked`
    /// one proof serves every longer input (r2 is any length of at least `bytes`); in
    /// `Mode::Strict` a program that reads its length in r2 is proven for exactly `bytes`
    /// (`Assumptions::exact_len`), and runs on longer inputs are refused too.
    pub fn input_size(mut self, bytes: u64) -> ProgramRef<'o> {
        self.input_size = Some(bytes);
        self
    }

    /// The program's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Verifies and prepares the program in one step, as the [`Vm`](crate::Vm) it was opened
    /// from says ([`VmConfig`](crate::VmConfig)): [`ProgramRef::verify`] in its mode, then
    /// [`Verified::load`] (its engine, JIT options and budget).
    ///
    /// ```
    /// use bpfx::{Budget, Engine, Vm, XdpAction};
    /// # std::env::set_current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).unwrap();
    /// let vm = Vm::new().engine(Engine::Jit)?.budget(Budget::Limit(10_000))?;
    /// let obj = vm.open("examples/xdp_parse.o")?;
    /// let mut prog = obj.program("xdp_parse")?.load()?;
    /// assert_eq!(prog.engine(), Engine::Jit);
    /// let mut packet = std::fs::read("examples/tcp-syn.bin").unwrap();
    /// assert_eq!(prog.run_xdp(&mut packet)?, XdpAction::Pass);
    /// // The run took some of the Vm's limit, and the rest is left for the next.
    /// assert!(prog.budget().is_some_and(|left| left < 10_000));
    /// # Ok::<(), bpfx::Error>(())
    /// ```
    pub fn load(self) -> Result<crate::Program, Error> {
        let mode = self.obj.shared.config.mode();
        self.verify(mode)?.load()
    }

    /// Verifies the program against the object's maps and helpers; once the verifier accepts
    /// it, creates the storage of the maps it names that no program created yet (each charged
    /// to the [`Vm`](crate::Vm)'s memory limit before it is allocated: [`Error::MemoryLimit`])
    /// and binds the program to them. A program naming a map bpfx cannot create fails here with
    /// [`Error::MapUnsupported`], before the verifier runs.
    pub fn verify(self, mode: Mode) -> Result<Verified, Error> {
        self.verify_with_log(mode).0
    }

    /// [`ProgramRef::verify`], also returning the verifier's log.
    ///
    /// When the program uses a program array that the object fills statically (`values`
    /// initialisers), the programs of its still-empty slots are verified too (in the same
    /// mode, each with its section's context), and so on through the arrays those use; they
    /// are put in their slots when this program is compiled or interpreted, on the same
    /// engine. One that does not verify fails this program.
    pub fn verify_with_log(self, mode: Mode) -> (Result<Verified, Error>, VerifierLog) {
        let (res, log) = self.verify_alone(mode);
        let res = res.and_then(|(mut v, used)| {
            v.static_slots = self.static_targets(mode, used)?;
            Ok(v)
        });
        (res, log)
    }

    /// Verifies and binds this program alone; also returns the maps it uses.
    fn verify_alone(&self, mode: Mode) -> (Result<(Verified, Vec<usize>), Error>, VerifierLog) {
        let (res, log) = self.verify_prepared(mode);
        let res = res.and_then(|(v, used)| Ok((self.bind(v, used.clone())?, used)));
        (res, log)
    }

    /// The program prepared for its context and maps, and verified: the proof and the maps it
    /// names, with the verifier's log.
    fn verify_prepared(
        &self,
        mode: Mode,
    ) -> (Result<(VerifiedProgram, Vec<usize>), Error>, VerifierLog) {
        match self.prepare(mode) {
            Ok((prog, cfg, used)) => {
                let (res, log) = bpfx_verifier::verify_with_log(prog, &cfg);
                let res = res.map(|v| (v, used)).map_err(|source| Error::Verify {
                    program: self.def.name.clone(),
                    source: Box::new(source),
                });
                (res, log)
            }
            Err(e) => (Err(e), VerifierLog::default()),
        }
    }

    /// Verification alone: what [`ProgramRef::verify`] decides, without creating or binding
    /// any map (the program's map references stay `map_idx` pseudo values). It also checks
    /// that the maps the program names, those not created yet, would fit the memory limit
    /// now ([`Error::MemoryLimit`]), and allocates nothing.
    pub fn check(self, mode: Mode) -> Result<VerifiedProgram, Error> {
        self.check_with_log(mode).0
    }

    /// [`ProgramRef::check`], also returning the verifier's log.
    pub fn check_with_log(self, mode: Mode) -> (Result<VerifiedProgram, Error>, VerifierLog) {
        let (res, log) = self.verify_prepared(mode);
        (res.and_then(|(v, used)| self.fits(&used).map(|()| v)), log)
    }

    /// Whether the maps in `used` not created yet fit the memory limit together.
    pub(super) fn fits(&self, used: &[usize]) -> Result<(), Error> {
        let shared = &self.obj.shared;
        let mut pending = 0u64;
        for &i in used {
            let m = &shared.maps[i];
            if m.created().is_some() {
                continue;
            }
            let need = m.creation_bytes().unwrap_or(0);
            shared
                .pool
                .check(|| format!("map `{}`", m.name()), need, pending)?;
            pending = pending.saturating_add(need);
        }
        Ok(())
    }

    /// The programs of the empty statically-initialised slots of the program arrays in
    /// `used`, transitively, verified: (map index, key, program).
    fn static_targets(
        &self,
        mode: Mode,
        mut used: Vec<usize>,
    ) -> Result<Vec<(usize, u32, Verified)>, Error> {
        let maps = &self.obj.shared.maps;
        let mut done = BTreeSet::new();
        let mut out = Vec::new();
        let mut next = 0;
        while let Some(&m) = used.get(next) {
            next += 1;
            for (map, slot, name) in self.obj.prog_inits.iter().filter(|i| i.0 == m) {
                if !done.insert((*map, *slot))
                    || maps[*map]
                        .created()
                        .is_some_and(|a| a.slot(u64::from(*slot)).is_ok())
                {
                    continue;
                }
                let refuse = |e: Error| Error::ProgArray {
                    map: maps[*map].name().to_string(),
                    program: name.clone(),
                    reason: format!("the program of its `values` slot {slot} does not load: {e}"),
                };
                let mut target = self.obj.program(name).map_err(refuse)?;
                // tc and ip load an object's programs as one type, their command's: a target
                // in an iproute2 tail-call section runs in the context of the program that
                // calls it.
                if super::object::iproute2_tail_section(&target.def.section) {
                    target = target.context(self.context);
                }
                let (v, target_used) = target.verify_alone(mode).0.map_err(refuse)?;
                for u in target_used {
                    if !used.contains(&u) {
                        used.push(u);
                    }
                }
                out.push((*map, *slot, v));
            }
        }
        Ok(out)
    }

    /// The program to verify (context-adapted), the verifier's configuration, and the maps
    /// the program names.
    fn prepare(&self, mode: Mode) -> Result<(bpfx_bytecode::Program, Config, Vec<usize>), Error> {
        let name = &self.def.name;
        if let Context::Unsupported(prog_type) = self.context {
            return Err(Error::UnsupportedProgramType {
                program: name.clone(),
                section: self.def.section.clone(),
                prog_type,
            });
        }
        if let Context::Struct(layout) = self.context {
            layout.check().map_err(|source| Error::Layout {
                program: name.clone(),
                source,
            })?;
        }
        self.check_externs()?;
        self.check_helpers_offered()?;
        let prog = self.def.program.clone();
        let maps = &self.obj.shared.maps;
        let used = used_maps(name, &prog, maps)?;
        let mut table = MapTable::new();
        for (i, m) in maps.iter().enumerate() {
            // A map of maps' inner maps are declared under `Inner(i)`, from its template.
            let template = m.spec().and_then(|s| s.inner.as_deref());
            // Programs only read device maps (the kernel forces BPF_F_RDONLY_PROG on them), and
            // never get a pointer into CPU, XSK or socket maps (lookups give NULL): all are lent
            // to runs read-only, and declared so, since the proofs rest on that flag.
            let read_only = |kind: MapKind, ro: bool| {
                ro || matches!(
                    kind,
                    MapKind::DevMap
                        | MapKind::DevMapHash
                        | MapKind::CpuMap
                        | MapKind::XskMap
                        | MapKind::SockMap
                        | MapKind::SockHash
                )
            };
            table.insert(
                MapRef::Idx(i as i32),
                MapDef {
                    key_size: m.key_size(),
                    value_size: m.value_size(),
                    read_only: m.kind().is_some_and(|k| read_only(k, m.read_only())),
                    prog_array: m.kind() == Some(MapKind::ProgArray),
                    inner: template.map(|_| MapRef::Inner(i as i32)),
                    max_entries: m.max_entries(),
                    map_type: m.kind().map_or(0, MapKind::kernel_type),
                    // The kernel keeps timers only in hash, LRU hash and array values (it
                    // refuses to create a map of another type whose value holds one).
                    timer_off: m.spec().and_then(|s| s.timer_off).filter(|_| {
                        matches!(
                            m.kind(),
                            Some(MapKind::Hash | MapKind::LruHash | MapKind::Array)
                        )
                    }),
                },
            );
            table.set_name(MapRef::Idx(i as i32), m.name());
            if let Some(t) = template {
                table.insert(
                    MapRef::Inner(i as i32),
                    MapDef::new(t.key_size, t.value_size)
                        .with_read_only(read_only(t.kind, t.read_only))
                        .with_map_type(t.kind.kernel_type()),
                );
                table.set_name(MapRef::Inner(i as i32), format!("{}.inner", m.name()));
            }
        }
        // Context accesses are checked against the context's fields and converted to bpfx's
        // layout by the verifier.
        let (kind, mem_size) = self.context.verifier_view(self.input_size);
        let cfg = Config {
            mode,
            mem_size,
            helpers: helpers::context_sigs(
                &self.obj.shared.sigs,
                self.context,
                &self.obj.shared.custom,
            ),
            maps: table,
            context: kind,
            ..Config::default()
        };
        Ok((prog, cfg, used))
    }

    /// Refuses a program the loader blocked: one that needs an extern nothing resolves (a
    /// strong `__ksym`, a function left by static linking), naming the program, the pc of its
    /// reference and the symbol ([`Error::Link`]).
    pub(super) fn check_externs(&self) -> Result<(), Error> {
        match &self.def.blocked {
            Some((pc, reason)) => Err(Error::Link {
                program: self.def.name.clone(),
                pc: *pc,
                insn: self
                    .def
                    .program
                    .get(*pc)
                    .map_or_else(|| "?".to_string(), |op| op.to_string()),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Refuses a call to a standard helper the program's type does not offer
    /// ([`helpers::offered`]), as the kernel's verifier does ("program of this type cannot use
    /// helper"), naming the helper and the type. A helper the embedder registered under the
    /// id (replacing the standard one) is the embedder's, offered everywhere.
    fn check_helpers_offered(&self) -> Result<(), Error> {
        let prog_type = match self.context {
            Context::Xdp => "xdp",
            Context::Tc => "sched_cls",
            Context::Socket => "socket_filter",
            c if c.is_tracing() => c.name(),
            Context::SockAddr(_)
            | Context::Sock(_)
            | Context::SockOps
            | Context::PerfEvent
            | Context::CgroupSkb(_)
            | Context::SkSkb
            | Context::SkMsg
            | Context::SkLookup
            | Context::CgroupDevice
            | Context::CgroupSockopt(_)
            | Context::CgroupSysctl
            | Context::Lwt(_) => self.context.name(),
            _ => return Ok(()),
        };
        let custom = &self.obj.shared.custom;
        for (pc, op) in self.def.program.iter() {
            let Op::Call(bpfx_bytecode::CallTarget::Helper(id)) = op else {
                continue;
            };
            let Some(helper) = helpers::standard_name(*id) else {
                continue;
            };
            if helpers::offered(self.context, *id) || custom.iter().any(|c| c.id == *id) {
                continue;
            }
            return Err(Error::Verify {
                program: self.def.name.clone(),
                source: Box::new(bpfx_verifier::VerifyError {
                    pc,
                    op: Some(*op),
                    kind: bpfx_verifier::VerifyErrorKind::HelperNotOffered {
                        helper: helper.to_string(),
                        id: *id,
                        prog_type: prog_type.to_string(),
                    },
                }),
            });
        }
        Ok(())
    }

    /// Creates the maps in `used` (charging the memory limit) and binds the program to them.
    /// They are checked to fit together first, so a program whose maps do not fit allocates
    /// none of them (and each creation is still charged before it allocates).
    fn bind(&self, v: VerifiedProgram, used: Vec<usize>) -> Result<Verified, Error> {
        self.fits(&used)?;
        let shared = &self.obj.shared;
        let mut created = Vec::with_capacity(used.len());
        for &i in &used {
            created.push(create_map(&shared.maps, &shared.pool, i)?.clone());
        }
        let outers = used
            .iter()
            .copied()
            .filter(|&i| {
                matches!(
                    shared.maps[i].kind(),
                    Some(MapKind::ArrayOfMaps | MapKind::HashOfMaps)
                )
            })
            .collect();
        let bound = v
            .bind_imm64(|_, imm| match imm {
                Imm64::MapIdx(i) => Some(helpers::map_handle(usize::try_from(i).ok()?)),
                Imm64::MapIdxValue { idx, off } => {
                    let block = shared
                        .maps
                        .get(usize::try_from(idx).ok()?)?
                        .created()?
                        .block()?;
                    Some(block.addr() + u64::from(off))
                }
                _ => None,
            })
            .map_err(|e| Error::Link {
                program: self.def.name.clone(),
                pc: Pc(e.pc),
                insn: String::new(),
                reason: format!("the bound program does not decode: {e}"),
            })?;
        // The proofs of map-value stores rest on the read-only flags the verifier was given:
        // each block must be lent exactly as writable as its map was declared.
        for (&i, map) in used.iter().zip(&created) {
            let declared = bound.assumptions().maps.get(MapRef::Idx(i as i32));
            if let (Some(def), Some(block)) = (declared, map.block())
                && def.read_only == block.writable()
            {
                return Err(Error::Link {
                    program: self.def.name.clone(),
                    pc: Pc(0),
                    insn: String::new(),
                    reason: format!(
                        "map {} was verified as {} but its memory is {}",
                        map.name(),
                        if def.read_only {
                            "read-only"
                        } else {
                            "writable"
                        },
                        if block.writable() {
                            "writable"
                        } else {
                            "read-only"
                        },
                    ),
                });
            }
        }
        // Prepared to run with these maps: their read-only data is fixed from now on.
        for &i in &used {
            shared.maps[i].freeze();
        }
        let mut blocks: Vec<_> = created.iter().filter_map(|m| m.block().cloned()).collect();
        // The sockets its lookups and its packet's `sk` point to (`sock_table.rs`).
        if matches!(
            self.context,
            Context::Tc
                | Context::Xdp
                | Context::Socket
                | Context::CgroupSkb(_)
                | Context::SkSkb
                | Context::SockAddr(_)
                | Context::SkLookup
                | Context::Lwt(_)
        ) && let Some(t) = &shared.hooks.sockets
        {
            blocks.extend(t.blocks().cloned());
        }
        Ok(Verified {
            shared: self.obj.shared.clone(),
            name: self.def.name.clone(),
            context: self.context,
            prog: bound,
            blocks,
            outers,
            static_slots: Vec::new(),
        })
    }
}

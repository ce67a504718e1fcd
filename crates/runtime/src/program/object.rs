//! The API types of a loaded object: [`Object`], its programs as defined ([`ProgramDef`],
//! [`ProgramInfo`]) and what its programs share.

use super::link::used_maps;
use super::{ProgramRef, Vm, VmConfig, create_map};
use crate::context::Context;
use crate::error::Error;
use crate::helpers::{CustomHelper, Hooks};
use crate::map::Map;
use crate::memory::Pool;
use crate::object_map::ObjectMap;
use bpfx_bytecode::Pc;
use bpfx_verifier::HelperTable;
use std::path::Path;
use std::sync::Arc;

/// A program as an object holds it, before verification.
#[derive(Clone, Debug)]
pub struct ProgramDef {
    /// Name (the function symbol).
    pub name: String,
    /// Section.
    pub section: String,
    /// The linked bytecode.
    pub program: crate::Bytecode,
    /// The struct its entry function's first parameter points to, from the object's BTF
    /// (`bpfx_elf::ProgramSpec::ctx_type_name`): the context when the section names none
    /// ([`Context::for_btf_type`]). `None` by default.
    pub ctx_type: Option<String>,
    /// Why it cannot load although the object does, and at which pc (an extern it needs).
    pub(super) blocked: Option<(Pc, String)>,
}

impl ProgramDef {
    /// A program definition.
    pub fn new(
        name: impl Into<String>,
        section: impl Into<String>,
        program: crate::Bytecode,
    ) -> ProgramDef {
        ProgramDef {
            name: name.into(),
            section: section.into(),
            program,
            ctx_type: None,
            blocked: None,
        }
    }
}

/// Why a program runs in its default context ([`ProgramInfo::context_source`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextSource {
    /// Its section names a program type ([`Context::for_section`]).
    Section,
    /// Its section names none, but its BTF does: the struct its first parameter points to
    /// ([`Context::for_btf_type`]).
    Btf,
    /// An iproute2 tail-call section (`<id>/<key>`, no type, no BTF context): the type the
    /// object's other programs share.
    Object,
    /// Nothing names a type: plain memory.
    Default,
}

impl ContextSource {
    /// Lower-case name: `section`, `btf`, `object` or `default`.
    pub const fn name(self) -> &'static str {
        match self {
            ContextSource::Section => "section",
            ContextSource::Btf => "btf",
            ContextSource::Object => "object",
            ContextSource::Default => "default",
        }
    }
}

/// What every program of one object shares.
pub(crate) struct Shared {
    pub(super) id: u64,
    pub(crate) maps: Arc<[ObjectMap]>,
    pub(super) hooks: Hooks,
    pub(super) custom: Vec<CustomHelper>,
    pub(super) sigs: HelperTable,
    pub(super) pool: Arc<Pool>,
    /// The [`Vm`]'s engine, mode, budget and JIT options when the object was opened.
    pub(super) config: VmConfig,
}

impl Drop for Shared {
    /// The object and every program of it are gone: its maps' timers go too. A timer holds
    /// the program its callback belongs to, whose JIT code may hold the map (a direct
    /// lookup's), so without this the map, the timer and the program would keep each other.
    fn drop(&mut self) {
        for m in self.maps.iter() {
            if let Some(map) = m.created() {
                map.timers().clear();
            }
        }
    }
}

/// A loaded object: its programs (not yet verified) and its maps (declared; each created when
/// a program that names it is prepared to run, or on host access, and then shared by every
/// program prepared from the object).
pub struct Object {
    pub(super) shared: Arc<Shared>,
    pub(super) programs: Vec<ProgramDef>,
    pub(super) license: Option<String>,
    /// The object's static program-array slots: (map index, key, program name).
    pub(super) prog_inits: Vec<(usize, u32, String)>,
    /// The named variables of its global data sections.
    pub(super) globals: Vec<bpfx_elf::GlobalVar>,
    /// Its maps' key and value layouts from BTF, by map index (empty when built without ELF).
    pub(super) map_layouts: Vec<bpfx_elf::MapLayout>,
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Object")
            .field(
                "programs",
                &self.programs.iter().map(|p| &p.name).collect::<Vec<_>>(),
            )
            .field("maps", &self.shared.maps)
            .finish()
    }
}

/// A program of an object, as listed by [`Object::programs`].
#[derive(Clone, Copy, Debug)]
pub struct ProgramInfo<'a> {
    /// Name (the function symbol).
    pub name: &'a str,
    /// Section.
    pub section: &'a str,
    /// The linked bytecode (entry function and its subprograms).
    pub program: &'a crate::Bytecode,
    /// The struct its BTF says its context is, if any ([`ProgramDef::ctx_type`]).
    pub ctx_type: Option<&'a str>,
    /// The context it runs in by default ([`ProgramInfo::context`]), and why.
    context: (Context, ContextSource),
}

impl ProgramInfo<'_> {
    /// Number of instructions (an `lddw` counts once).
    pub fn insn_count(&self) -> usize {
        self.program.iter().count()
    }

    /// The context it runs in by default: the one its section implies, or for a program of an
    /// iproute2 tail-call section, the one of the object's other programs
    /// ([`Object::program`]).
    pub fn context(&self) -> Context {
        self.context.0
    }

    /// Why [`ProgramInfo::context`] is what it is: the section, the BTF, the object's other
    /// programs, or nothing (plain memory).
    pub fn context_source(&self) -> ContextSource {
        self.context.1
    }
}

/// Whether `section` is one of iproute2's tail-call sections, `<id>/<key>` (each a number as
/// C's `%i` reads it: decimal, `0x` hex or `0` octal).
pub(super) fn iproute2_tail_section(section: &str) -> bool {
    let number = |s: &str| {
        let s = s.strip_prefix(['+', '-']).unwrap_or(s);
        match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
            None => !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()),
        }
    };
    section
        .split_once('/')
        .is_some_and(|(id, key)| number(id) && number(key))
}

/// Whether `section` is `.text` (or `.text.…`): its functions are programs only in an object
/// of plain functions, which no kernel loader takes as programs (libbpf loads them only as
/// subprograms) but user-space runtimes do, with their own context structs (userspace-xdp's
/// `struct xdp_md` has 64-bit pointers): their BTF names no kernel context.
fn plain_function_section(section: &str) -> bool {
    section == ".text" || section.starts_with(".text.")
}

/// The context program `def` runs in by default, with why: the one its section implies
/// ([`Context::for_section`]); when that is plain memory (the section names no type, as
/// iproute2's `sec ingress` or `sec mapper`) and the section is not `.text`, the one its BTF
/// declares ([`Context::for_btf_type`]); failing that, in iproute2's tail-call sections (`tc` and `ip
/// link` load every program of the object as the type of their command), the one context the
/// object's other programs have by section or BTF, when they agree on one; otherwise plain
/// memory.
fn default_context(programs: &[ProgramDef], def: &ProgramDef) -> (Context, ContextSource) {
    let own = |p: &ProgramDef| match Context::for_section(&p.section) {
        Context::Memory if !plain_function_section(&p.section) => p
            .ctx_type
            .as_deref()
            .and_then(Context::for_btf_type)
            .map(|c| (c, ContextSource::Btf)),
        Context::Memory => None,
        c => Some((c, ContextSource::Section)),
    };
    if let Some(c) = own(def) {
        return c;
    }
    if iproute2_tail_section(&def.section) {
        let mut others = programs.iter().filter_map(|p| own(p).map(|(c, _)| c));
        if let Some(first) = others.next()
            && others.all(|c| c == first)
        {
            return (first, ContextSource::Object);
        }
    }
    (Context::Memory, ContextSource::Default)
}

impl Object {
    /// Opens an ELF object with the default [`Vm`].
    pub fn open(path: impl AsRef<Path>) -> Result<Object, Error> {
        Vm::new().open(path)
    }

    /// Its programs, in the object's order.
    pub fn programs(&self) -> impl Iterator<Item = ProgramInfo<'_>> + '_ {
        self.programs.iter().map(|p| ProgramInfo {
            name: &p.name,
            section: &p.section,
            program: &p.program,
            ctx_type: p.ctx_type.as_deref(),
            context: default_context(&self.programs, p),
        })
    }

    /// Its maps as declared, in index order, each with its status and, once created, its
    /// storage ([`ObjectMap::created`]). Listing them creates nothing.
    pub fn maps(&self) -> impl Iterator<Item = &ObjectMap> + '_ {
        self.shared.maps.iter()
    }

    /// The map called `name`, its storage created now if no program created it yet (charged
    /// to the [`Vm`]'s memory limit): [`Error::MapSpec`] when bpfx cannot create it,
    /// [`Error::MemoryLimit`] when it does not fit.
    pub fn map(&self, name: &str) -> Result<Arc<Map>, Error> {
        let m = self
            .shared
            .maps
            .iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| Error::NoMap {
                name: name.to_string(),
                available: self.maps().map(|m| m.name().to_string()).collect(),
            })?;
        let i = self
            .shared
            .maps
            .iter()
            .position(|o| std::ptr::eq(o, m))
            .unwrap_or_default();
        create_map(&self.shared.maps, &self.shared.pool, i).cloned()
    }

    /// The bytes held now against the memory limit of the [`Vm`] this object was opened from
    /// (by all its objects).
    pub fn mem_used(&self) -> u64 {
        self.shared.pool.used()
    }

    /// Whether program `name` can be prepared as far as its type, externs and maps go: bpfx
    /// models the type its section implies ([`Error::UnsupportedProgramType`] otherwise), every
    /// extern it references is resolved (a strong `__ksym` or a function left by static
    /// linking is not: [`Error::Link`]), every map its `lddw` instructions name exists and bpfx
    /// can create it ([`Error::MapUnsupported`] otherwise), and those not created yet fit the
    /// memory limit together now ([`Error::MemoryLimit`]). Says nothing of what the verifier
    /// will decide; creates nothing.
    pub fn program_status(&self, name: &str) -> Result<(), Error> {
        let p = self.program(name)?;
        if let Context::Unsupported(prog_type) = p.context {
            return Err(Error::UnsupportedProgramType {
                program: p.def.name.clone(),
                section: p.def.section.clone(),
                prog_type,
            });
        }
        p.check_externs()?;
        let used = used_maps(&p.def.name, &p.def.program, &self.shared.maps)?;
        p.fits(&used)
    }

    /// The engine, mode, budget and JIT options of the [`Vm`] this object was opened from
    /// (as they were then): what [`ProgramRef::load`] prepares its programs with.
    pub fn config(&self) -> &VmConfig {
        &self.shared.config
    }

    /// The `license` string, if the object has one.
    pub fn license(&self) -> Option<&str> {
        self.license.as_deref()
    }

    /// The program whose name is `name`, or else the first one in section `name`; its context
    /// defaults to the one the section implies ([`Context::for_section`]); where the section
    /// names no type, to the one its BTF declares ([`Context::for_btf_type`]: `sec("ingress")
    /// int f(struct __sk_buff *skb)` runs as TC); failing that, in iproute2's tail-call
    /// sections (`<id>/<key>`), to the one the object's other programs share (`tc` and `ip
    /// link` load every program of an object as one type), or plain memory when they share
    /// none. [`ProgramRef::context`] overrides it.
    pub fn program(&self, name: &str) -> Result<ProgramRef<'_>, Error> {
        let def = self
            .programs
            .iter()
            .find(|p| p.name == name)
            .or_else(|| self.programs.iter().find(|p| p.section == name))
            .ok_or_else(|| Error::NoProgram {
                name: name.to_string(),
                available: self.programs.iter().map(|p| p.name.clone()).collect(),
            })?;
        Ok(ProgramRef {
            obj: self,
            def,
            context: default_context(&self.programs, def).0,
            input_size: None,
        })
    }
}

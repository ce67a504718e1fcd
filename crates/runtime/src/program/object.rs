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
            blocked: None,
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
    /// The context it runs in by default ([`ProgramInfo::context`]).
    context: Context,
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
        self.context
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

/// The context of a program of section `section` among `programs` by default: the one the
/// section implies ([`Context::for_section`]); but iproute2's tail-call sections name no
/// program type (`tc` and `ip link` load every program of the object as the type of their
/// command), so such a program takes the one context the object's other programs' sections
/// imply, when they agree on one; otherwise plain memory.
fn default_context(programs: &[ProgramDef], section: &str) -> Context {
    let own = Context::for_section(section);
    if own != Context::Memory || !iproute2_tail_section(section) {
        return own;
    }
    let mut others = programs
        .iter()
        .map(|p| Context::for_section(&p.section))
        .filter(|c| *c != Context::Memory);
    match others.next() {
        Some(first) if others.all(|c| c == first) => first,
        _ => own,
    }
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
            context: default_context(&self.programs, &p.section),
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
    /// defaults to the one the section implies ([`Context::for_section`]), except in
    /// iproute2's tail-call sections (`<id>/<key>`, which name no type): there it is the one
    /// the object's other programs share (`tc` and `ip link` load every program of an object
    /// as one type), or plain memory when they share none.
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
            context: default_context(&self.programs, &def.section),
            input_size: None,
        })
    }
}

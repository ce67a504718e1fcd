//! Global variables by name, as libbpf's skeletons reach them: each named variable of a
//! global data section (`.data`, `.rodata`, `.bss`, …) found through the object's BTF
//! `DATASEC` ([`bpfx_elf::GlobalVar`]), read and written in the section's map value.
//!
//! Read-only variables (`.rodata`, `const volatile` in C) are the program's settings: the
//! host sets them before the programs that read them are prepared, as a skeleton sets
//! `skel->rodata` before `__load()`, after which the kernel freezes the map. Here a read-only
//! section is fixed once a program naming it is verified ([`crate::ObjectMap::frozen`]).
//!
//! A name is looked up in section order: two `static` variables of one name in different
//! sections resolve to the first.

use super::{Object, create_map};
use crate::error::Error;
use crate::typed::Pod;

/// A global variable of an object, as [`Object::globals`] lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Global<'a> {
    /// The variable's name.
    pub name: &'a str,
    /// Its section (the map named after it: `.data`, `.rodata`, `.bss`, …).
    pub section: &'a str,
    /// Byte offset in the section.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Whether programs may only read it (`.rodata*`).
    pub read_only: bool,
    /// How its value reads, from the object's BTF (`None` for an object without BTF).
    pub layout: Option<&'a bpfx_elf::Layout>,
}

impl Object {
    /// The named variables of its global data sections, by section then offset (an object
    /// built without BTF lists its data sections' symbols instead).
    pub fn globals(&self) -> impl Iterator<Item = Global<'_>> + '_ {
        self.globals.iter().filter_map(|g| {
            let m = self.shared.maps.get(g.map)?;
            Some(Global {
                name: &g.name,
                section: m.name(),
                offset: g.offset,
                size: g.size,
                read_only: m.read_only(),
                layout: g.layout.as_ref(),
            })
        })
    }

    /// How map `name`'s keys and values read, from the types its BTF definition points `key`
    /// and `value` at; `None` for a map the object lacks. (Per member `None` where the
    /// definition gives a size instead, or the object has no BTF.)
    pub fn map_layout(&self, name: &str) -> Option<&bpfx_elf::MapLayout> {
        let i = self.shared.maps.iter().position(|m| m.name() == name)?;
        self.map_layouts.get(i)
    }

    fn global_var<T: Pod>(&self, name: &str) -> Result<&bpfx_elf::GlobalVar, Error> {
        self.global_sized(name, std::any::type_name::<T>(), T::SIZE)
    }

    /// Variable `name`, which a value of type `ty` (`ty_size` bytes) must fit exactly.
    fn global_sized(
        &self,
        name: &str,
        ty: &'static str,
        ty_size: usize,
    ) -> Result<&bpfx_elf::GlobalVar, Error> {
        let g = self
            .globals
            .iter()
            .find(|g| g.name == name)
            .ok_or_else(|| Error::NoGlobal {
                name: name.to_string(),
                available: self.globals.iter().map(|g| g.name.clone()).collect(),
            })?;
        if ty_size != g.size as usize {
            return Err(Error::GlobalSize {
                name: name.to_string(),
                size: g.size,
                ty,
                ty_size,
            });
        }
        Ok(g)
    }

    /// Sets global variable `name` to `value`, whose type must have the variable's size
    /// ([`Error::GlobalSize`]; [`Error::NoGlobal`] names the object's globals). Programs see
    /// the new value on their next access. A read-only variable can be set only until a
    /// program that reads its section is verified ([`Error::GlobalFrozen`]). Only the
    /// variable's bytes are written: programs updating other variables of the same section
    /// at the same time keep their writes.
    pub fn set_global<T: Pod>(&self, name: &str, value: T) -> Result<(), Error> {
        let g = self.global_var::<T>(name)?;
        self.write_global(name, g, &value.to_bytes())
    }

    /// [`Object::set_global`] from the value's bytes, for embedders whose types are known
    /// only at run time (the C API): `bytes` must be exactly the variable's size.
    pub fn set_global_bytes(&self, name: &str, bytes: &[u8]) -> Result<(), Error> {
        let g = self.global_sized(name, "[u8]", bytes.len())?;
        self.write_global(name, g, bytes)
    }

    fn write_global(&self, name: &str, g: &bpfx_elf::GlobalVar, bytes: &[u8]) -> Result<(), Error> {
        let om = &self.shared.maps[g.map];
        if om.read_only() && om.frozen() {
            return Err(Error::GlobalFrozen {
                name: name.to_string(),
                section: om.name().to_string(),
            });
        }
        let map = create_map(&self.shared.maps, &self.shared.pool, g.map)?;
        let block = map.block().ok_or_else(|| Error::MapSpec {
            map: om.name().to_string(),
            reason: "a global data section without memory".to_string(),
        })?;
        block.write(g.offset as usize, bytes);
        Ok(())
    }

    /// The value of global variable `name`, read as a `T` of the variable's size (errors as
    /// [`Object::set_global`]'s, read-only variables included at any time).
    pub fn get_global<T: Pod>(&self, name: &str) -> Result<T, Error> {
        let g = self.global_var::<T>(name)?;
        Ok(T::from_bytes(&self.read_global(g)?))
    }

    /// [`Object::get_global`] as bytes, into `out`, which must be exactly the variable's size.
    pub fn get_global_bytes(&self, name: &str, out: &mut [u8]) -> Result<(), Error> {
        let g = self.global_sized(name, "[u8]", out.len())?;
        out.copy_from_slice(&self.read_global(g)?);
        Ok(())
    }

    fn read_global(&self, g: &bpfx_elf::GlobalVar) -> Result<Vec<u8>, Error> {
        let map = create_map(&self.shared.maps, &self.shared.pool, g.map)?;
        let block = map.block().ok_or_else(|| Error::MapSpec {
            map: map.name().to_string(),
            reason: "a global data section without memory".to_string(),
        })?;
        let mut bytes = vec![0; g.size as usize];
        block.read(g.offset as usize, &mut bytes);
        Ok(bytes)
    }
}

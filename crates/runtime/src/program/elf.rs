//! ELF object → [`Object`]: the loader's maps and programs, with the `Vm`'s kconfig values,
//! static program-array slots and the externs that block programs.

use super::{Object, ProgramDef, Vm};
use crate::error::Error;
use crate::object_map::ObjectMap;

impl Vm {
    pub(super) fn load_named(&self, bytes: &[u8], what: &str) -> Result<Object, Error> {
        let mut obj = bpfx_elf::parse(bytes).map_err(|source| Error::Elf {
            what: what.to_string(),
            source: Box::new(source),
        })?;
        let kconfig = obj
            .kconfig_value(|name| self.kconfig.get(name).cloned())
            .map_err(|e| Error::MapSpec {
                map: bpfx_elf::KCONFIG_MAP.into(),
                reason: e.to_string(),
            })?;
        let unset = match (kconfig, obj.kconfig_map()) {
            (Some(k), Some(i)) => {
                obj.maps[i].initial_data = Some(k.bytes);
                k.unset
            }
            _ => Vec::new(),
        };
        let mut prog_inits = Vec::new();
        for (i, m) in obj.maps.iter().enumerate() {
            for (slot, init) in &m.init {
                if let bpfx_elf::MapInit::Program(p) = init {
                    prog_inits.push((i, *slot, p.clone()));
                }
            }
        }
        let externs = std::mem::take(&mut obj.externs);
        let globals = std::mem::take(&mut obj.globals);
        let map_layouts = std::mem::take(&mut obj.map_layouts);
        let cfg = self.map_config();
        let maps = obj
            .maps
            .into_iter()
            .map(|mut m| {
                if let Some(&n) = self.max_entries.get(&m.name) {
                    m.max_entries = n;
                }
                if let Some(t) = self.inner_maps.get(&m.name)
                    && m.kind.is_map_in_map()
                    && m.inner.is_none()
                {
                    m.inner = Some(Box::new(template_spec(t)));
                }
                ObjectMap::from_elf(m, &cfg)
            })
            .collect();
        let programs = obj
            .programs
            .into_iter()
            .map(|p| {
                let blocked = p.externs.iter().find_map(|u| {
                    crate::externs::refusal(&externs, &unset, u).map(|why| (u.pc, why))
                });
                let mut def = ProgramDef::new(p.name, p.section, p.program);
                def.ctx_type = p.ctx_type_name;
                def.blocked = blocked;
                def
            })
            .collect();
        let mut o = self.build(programs, maps);
        o.license = obj.license;
        o.prog_inits = prog_inits;
        o.globals = globals;
        o.map_layouts = map_layouts;
        Ok(o)
    }
}

/// A template given by [`Vm::inner_map`] as the ELF loader's spec: its shape (type, sizes,
/// entries, flags, `map_extra`), with nothing an object's definition adds (no initial data,
/// no slots, no inner template: an inner map cannot be a map of maps).
fn template_spec(t: &crate::MapSpec) -> bpfx_elf::MapSpec {
    let mut s = bpfx_elf::MapSpec::new(
        t.name.clone(),
        bpfx_elf::MapType::from(t.kind),
        t.key_size,
        t.value_size,
        t.max_entries,
    );
    s.flags = t.flags;
    s.map_extra = t.map_extra;
    s.numa_node = t.numa_node;
    s.timer_off = t.timer_off;
    s
}

//! Map discovery: legacy `maps` definitions, BTF-defined `.maps`, and global data sections, in
//! that order, each becoming a [`MapSpec`] at a fixed index of [`crate::Object::maps`].

use crate::btf::{Btf, Kind};
use crate::error::{ElfError, MapErrorKind, SectionErrorKind};
use crate::file::{File, SectionKind, SymKind};
use crate::{MapKind, MapSpec};
use std::collections::HashMap;

/// `BPF_F_RDONLY_PROG`: the program may only read the map.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: the map's memory may be mapped by user space (set on global data maps).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// The largest global data section loaded, in bytes: the kernel's limit on an array map value
/// (`KMALLOC_MAX_SIZE` on x86-64, 4 MiB). It also keeps a corrupt `.bss` size from allocating
/// without bound.
pub const MAX_DATA_SIZE: u64 = 4 << 20;

/// Size of the legacy `struct bpf_map_def`: five `u32` fields.
const MAP_DEF_SIZE: usize = 20;

/// Where each map came from, so `lddw` relocations can find its index.
#[derive(Debug, Default)]
pub(crate) struct MapIndex {
    /// (section, byte offset of the definition) → map index, for `maps` and `.maps`.
    pub(crate) defs: HashMap<(usize, u64), usize>,
    /// Sections holding map definitions.
    pub(crate) def_sections: Vec<usize>,
    /// Global data section → (map index, section size).
    pub(crate) data: HashMap<usize, (usize, u64)>,
}

/// Collects every map of the object.
pub(crate) fn collect(file: &File<'_>) -> Result<(Vec<MapSpec>, MapIndex), ElfError> {
    let mut maps = Vec::new();
    let mut index = MapIndex::default();
    for (i, s) in file.sections.iter().enumerate() {
        if s.kind == SectionKind::Bytes && (s.name == "maps" || s.name.starts_with("maps/")) {
            legacy_maps(file, i, &mut maps, &mut index)?;
        }
    }
    if let Some((i, s)) = file.section_named(".maps")
        && s.kind != SectionKind::Other
        && s.size > 0
    {
        btf_maps(file, i, &mut maps, &mut index)?;
    }
    for (i, s) in file.sections.iter().enumerate() {
        let Some(read_only) = data_section(&s.name) else {
            continue;
        };
        if !matches!(s.kind, SectionKind::Bytes | SectionKind::Zeroes) || s.size == 0 {
            continue;
        }
        if s.size > MAX_DATA_SIZE {
            return Err(ElfError::Section {
                section: s.name.clone(),
                kind: SectionErrorKind::DataTooLarge {
                    size: s.size,
                    limit: MAX_DATA_SIZE,
                },
            });
        }
        let bytes = match s.kind {
            SectionKind::Zeroes => vec![0; s.size as usize],
            _ => s.data.to_vec(),
        };
        index.data.insert(i, (maps.len(), s.size));
        maps.push(MapSpec {
            name: s.name.clone(),
            kind: MapKind::Array,
            key_size: 4,
            value_size: s.size as u32,
            max_entries: 1,
            // As libbpf creates them: mappable, and read-only for the program when `.rodata`.
            flags: BPF_F_MMAPABLE | if read_only { BPF_F_RDONLY_PROG } else { 0 },
            initial_data: Some(bytes),
            read_only,
        });
    }
    Ok((maps, index))
}

/// Whether a section name is global data, and if so whether it is read-only.
fn data_section(name: &str) -> Option<bool> {
    let is =
        |base: &str| name == base || name.strip_prefix(base).is_some_and(|r| r.starts_with('.'));
    if is(".rodata") {
        Some(true)
    } else if is(".data") || is(".bss") {
        Some(false)
    } else {
        None
    }
}

/// Legacy `struct bpf_map_def` arrays: one symbol per map, the definition size being the
/// section size over the number of symbols (libbpf's rule, which admits longer definitions
/// whose extra fields are zero).
fn legacy_maps(
    file: &File<'_>,
    section: usize,
    maps: &mut Vec<MapSpec>,
    index: &mut MapIndex,
) -> Result<(), ElfError> {
    let s = &file.sections[section];
    let mut syms: Vec<_> = file
        .symbols
        .iter()
        .filter(|y| {
            y.section == Some(section) && matches!(y.kind, SymKind::Object | SymKind::NoType)
        })
        .collect();
    if syms.is_empty() {
        return Ok(());
    }
    syms.sort_by_key(|y| y.value);
    let size = s.data.len() as u64;
    if !size.is_multiple_of(syms.len() as u64) {
        return Err(ElfError::Section {
            section: s.name.clone(),
            kind: SectionErrorKind::MapDefSize {
                size,
                maps: syms.len(),
            },
        });
    }
    let def_size = size / syms.len() as u64;
    index.def_sections.push(section);
    for sym in syms {
        let err = |kind| ElfError::Map {
            section: s.name.clone(),
            map: sym.name.clone(),
            kind,
        };
        let def = sym
            .value
            .checked_add(def_size)
            .and_then(|end| s.data.get(sym.value as usize..end as usize))
            .filter(|_| def_size > 0)
            .ok_or_else(|| {
                err(MapErrorKind::Range {
                    offset: sym.value,
                    size: def_size,
                })
            })?;
        let mut fields = [0u8; MAP_DEF_SIZE];
        let known = def.len().min(MAP_DEF_SIZE);
        fields[..known].copy_from_slice(&def[..known]);
        if def[known..].iter().any(|&b| b != 0) {
            return Err(err(MapErrorKind::UnknownFields));
        }
        let field = |i: usize| {
            u32::from_le_bytes([
                fields[4 * i],
                fields[4 * i + 1],
                fields[4 * i + 2],
                fields[4 * i + 3],
            ])
        };
        let flags = field(4);
        index.defs.insert((section, sym.value), maps.len());
        maps.push(MapSpec {
            name: sym.name.clone(),
            kind: MapKind::from_raw(field(0)),
            key_size: field(1),
            value_size: field(2),
            max_entries: field(3),
            flags,
            initial_data: None,
            read_only: flags & BPF_F_RDONLY_PROG != 0,
        });
    }
    Ok(())
}

/// BTF-defined maps: each variable of the `.maps` DATASEC is a struct whose members encode the
/// definition in their types (see [`read_btf_def`]).
fn btf_maps(
    file: &File<'_>,
    section: usize,
    maps: &mut Vec<MapSpec>,
    index: &mut MapIndex,
) -> Result<(), ElfError> {
    let sec_name = &file.sections[section].name;
    let btf_data = match file.section_named(".BTF") {
        Some((_, s)) if s.kind == SectionKind::Bytes => s.data,
        _ => {
            return Err(ElfError::Section {
                section: sec_name.clone(),
                kind: SectionErrorKind::MissingBtf,
            });
        }
    };
    let btf = Btf::parse(btf_data)?;
    let vars = btf.datasec(sec_name).ok_or_else(|| ElfError::Section {
        section: sec_name.clone(),
        kind: SectionErrorKind::MissingDatasec,
    })?;
    let mut found = Vec::with_capacity(vars.len());
    for var in vars {
        let var_type = btf.get(var.type_id)?;
        let name = btf.name(var_type.name_off)?;
        // clang leaves DATASEC offsets for the linker to fill in; libbpf takes them from the
        // symbol of the same name, and so does this loader.
        let offset = file
            .symbols
            .iter()
            .find(|y| y.section == Some(section) && y.name == name)
            .map_or(u64::from(var.offset), |y| y.value);
        let spec = read_btf_def(&btf, var.type_id, &name).map_err(|kind| ElfError::Map {
            section: sec_name.clone(),
            map: name.clone(),
            kind,
        })?;
        found.push((offset, spec));
    }
    found.sort_by_key(|(offset, _)| *offset);
    index.def_sections.push(section);
    for (offset, spec) in found {
        index.defs.insert((section, offset), maps.len());
        maps.push(spec);
    }
    Ok(())
}

/// Reads one BTF map definition, as libbpf's `parse_btf_map_def` does: `type`, `key_size`,
/// `value_size`, `max_entries` and `map_flags` are `int (*name)[N]` (the value is N); `key`
/// and `value` are `T *name` (the value is `sizeof(T)`).
fn read_btf_def(btf: &Btf<'_>, var_id: u32, name: &str) -> Result<MapSpec, MapErrorKind> {
    let b = MapErrorKind::Btf;
    let struct_id = btf.skip_modifiers(var_id).map_err(b)?;
    let Kind::Struct(members) = &btf.get(struct_id).map_err(b)?.kind else {
        return Err(MapErrorKind::NotStruct(struct_id));
    };
    let mut kind = None;
    let (mut key, mut key_size, mut value, mut value_size) = (None, None, None, None);
    let (mut max_entries, mut flags) = (0, 0);
    for m in members {
        let member = btf.name(m.name_off).map_err(b)?;
        match member.as_str() {
            "type" => kind = Some(array_len(btf, m.type_id, &member)?),
            "key_size" => key_size = Some(array_len(btf, m.type_id, &member)?),
            "value_size" => value_size = Some(array_len(btf, m.type_id, &member)?),
            "max_entries" => max_entries = array_len(btf, m.type_id, &member)?,
            "map_flags" => flags = array_len(btf, m.type_id, &member)?,
            "key" => key = Some(pointee_size(btf, m.type_id, &member)?),
            "value" => value = Some(pointee_size(btf, m.type_id, &member)?),
            // Placement and initial contents (NUMA node, pinning, bloom filter hashes, and
            // `values` for prog arrays and maps of maps) do not change the map's shape.
            "numa_node" | "pinning" | "map_extra" | "values" => {}
            _ => return Err(MapErrorKind::UnknownMember(member)),
        }
    }
    let pick = |what, typed: Option<u32>, sized: Option<u32>| match (typed, sized) {
        (Some(a), Some(b)) if a != b => Err(MapErrorKind::Conflict { what, a, b }),
        (a, b) => Ok(a.or(b).unwrap_or(0)),
    };
    Ok(MapSpec {
        name: name.to_string(),
        kind: MapKind::from_raw(kind.ok_or(MapErrorKind::NoType)?),
        key_size: pick("key", key, key_size)?,
        value_size: pick("value", value, value_size)?,
        max_entries,
        flags,
        initial_data: None,
        read_only: flags & BPF_F_RDONLY_PROG != 0,
    })
}

/// `int (*name)[N]` → N.
fn array_len(btf: &Btf<'_>, type_id: u32, member: &str) -> Result<u32, MapErrorKind> {
    let b = MapErrorKind::Btf;
    let not = || MapErrorKind::NotArrayPointer(member.to_string());
    let ptr = btf
        .get(btf.skip_modifiers(type_id).map_err(b)?)
        .map_err(b)?;
    if !matches!(ptr.kind, Kind::Ptr) {
        return Err(not());
    }
    let array = btf
        .get(btf.skip_modifiers(ptr.size_or_type).map_err(b)?)
        .map_err(b)?;
    match array.kind {
        Kind::Array { nelems, .. } => Ok(nelems),
        _ => Err(not()),
    }
}

/// `T *name` → `sizeof(T)`.
fn pointee_size(btf: &Btf<'_>, type_id: u32, member: &str) -> Result<u32, MapErrorKind> {
    let b = MapErrorKind::Btf;
    let ptr = btf
        .get(btf.skip_modifiers(type_id).map_err(b)?)
        .map_err(b)?;
    if !matches!(ptr.kind, Kind::Ptr) {
        return Err(MapErrorKind::NotPointer(member.to_string()));
    }
    btf.size_of(ptr.size_or_type).map_err(b)
}

//! Map discovery: legacy `maps` definitions, BTF-defined `.maps`, and global data sections, in
//! that order, each becoming a [`MapSpec`] at a fixed index of [`crate::Object::maps`]
//! (then the `.kconfig` map of [`crate::externs`], when there are `__kconfig` externs).

use crate::btf::{Btf, Kind, Layout, MAX_DEPTH, MAX_WALK};
use crate::error::{BtfError, ElfError, MapErrorKind, RelocErrorKind, SectionErrorKind};
use crate::file::{File, SectionKind, SymKind};
use crate::{GlobalVar, MapInit, MapKind, MapLayout, MapSpec, MapType, ProgramSpec};
use std::collections::HashMap;

/// `BPF_F_RDONLY_PROG`: the program may only read the map.
pub const BPF_F_RDONLY_PROG: u32 = 1 << 7;
/// `BPF_F_MMAPABLE`: the map's memory may be mapped by user space (set on global data maps).
pub const BPF_F_MMAPABLE: u32 = 1 << 10;

/// The largest global data section loaded, in bytes: the kernel's limit on an array map value
/// (`KMALLOC_MAX_SIZE` on x86-64, 4 MiB). It also keeps a corrupt `.bss` size from allocating
/// without bound.
pub const MAX_DATA_SIZE: u64 = 4 << 20;

/// Size of iproute2's legacy `struct bpf_elf_map`: nine `u32` fields, the five of libbpf's
/// `struct bpf_map_def` (`type, key_size, value_size, max_entries, map_flags`) then `id,
/// pinning, inner_id, inner_idx`.
const ELF_MAP_SIZE: usize = 36;

/// The page size libbpf rounds ring buffer sizes to (x86-64's), in bytes.
pub const RINGBUF_PAGE_SIZE: u32 = 4096;

/// Size of a pointer in a BTF `values` array: the BPF target's, in bytes.
const PTR_SIZE: u64 = 8;

/// Where each map came from, so `lddw` relocations can find its index.
#[derive(Debug, Default)]
pub(crate) struct MapIndex {
    /// (section, byte offset of the definition) → map index, for `maps` and `.maps`.
    pub(crate) defs: HashMap<(usize, u64), usize>,
    /// Sections holding map definitions.
    pub(crate) def_sections: Vec<usize>,
    /// Global data section → (map index, section size).
    pub(crate) data: HashMap<usize, (usize, u64)>,
    /// The `.kconfig` map's index, when there are `__kconfig` externs.
    pub(crate) kconfig: Option<usize>,
}

/// Collects every map of the object.
pub(crate) fn collect(
    file: &File<'_>,
    btf: Option<&Result<Btf<'_>, BtfError>>,
) -> Result<(Vec<MapSpec>, MapIndex), ElfError> {
    let mut maps = Vec::new();
    let mut index = MapIndex::default();
    for (i, s) in file.sections.iter().enumerate() {
        if s.kind == SectionKind::Bytes && (s.name == "maps" || s.name.starts_with("maps/")) {
            let first = maps.len();
            let links = legacy_maps(file, i, &mut maps, &mut index)?;
            link_elf_maps(&s.name, &mut maps, first, &links)?;
        }
    }
    if let Some((i, s)) = file.section_named(".maps")
        && s.kind != SectionKind::Other
        && s.size > 0
    {
        let btf = match btf {
            Some(Ok(btf)) => btf,
            Some(Err(e)) => return Err(e.clone().into()),
            None => {
                return Err(ElfError::Section {
                    section: s.name.clone(),
                    kind: SectionErrorKind::MissingBtf,
                });
            }
        };
        btf_maps(file, btf, i, &mut maps, &mut index)?;
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
            // As libbpf creates them: mappable, and read-only for the program when `.rodata`.
            flags: BPF_F_MMAPABLE | if read_only { BPF_F_RDONLY_PROG } else { 0 },
            initial_data: Some(bytes),
            read_only,
            ..MapSpec::new(s.name.clone(), MapKind::Array.into(), 4, s.size as u32, 1)
        });
    }
    Ok((maps, index))
}

/// The named variables of every global data section: from its BTF `DATASEC` when the object
/// has one for the section, else from the section's `OBJECT` symbols. Variables that do not
/// lie inside their section are left out (a malformed object still loads; its variables are
/// then not reachable by name).
pub(crate) fn globals(
    file: &File<'_>,
    btf: Option<&Result<Btf<'_>, BtfError>>,
    index: &MapIndex,
) -> Vec<GlobalVar> {
    let mut sections: Vec<(usize, usize, u64)> = index
        .data
        .iter()
        .map(|(&s, &(m, size))| (s, m, size))
        .collect();
    sections.sort_unstable();
    let mut out = Vec::new();
    for (section, map, size) in sections {
        let sec_name = &file.sections[section].name;
        let symbol = |name: &str| {
            file.symbols
                .iter()
                .find(|y| y.section == Some(section) && y.name == name)
        };
        let mut vars: Vec<(String, u64, u64, Option<Layout>)> = Vec::new();
        match btf
            .and_then(|b| b.as_ref().ok())
            .and_then(|b| Some((b, b.datasec(sec_name)?)))
        {
            Some((btf, infos)) => {
                for v in infos {
                    let Ok(name) = btf.get(v.type_id).and_then(|t| btf.name(t.name_off)) else {
                        continue;
                    };
                    let sym = symbol(&name);
                    let offset = sym.map_or(u64::from(v.offset), |y| y.value);
                    let var_size = if v.size > 0 {
                        u64::from(v.size)
                    } else {
                        sym.map_or(0, |y| y.size)
                    };
                    vars.push((name, offset, var_size, Some(btf.layout(v.type_id))));
                }
            }
            None => {
                for y in &file.symbols {
                    if y.section == Some(section)
                        && y.kind == SymKind::Object
                        && y.size > 0
                        && !y.name.is_empty()
                    {
                        vars.push((y.name.clone(), y.value, y.size, None));
                    }
                }
            }
        }
        vars.sort_by_key(|(_, offset, _, _)| *offset);
        for (name, offset, var_size, layout) in vars {
            let inside = var_size > 0 && offset.checked_add(var_size).is_some_and(|e| e <= size);
            if let (true, Ok(offset), Ok(var_size)) =
                (inside, u32::try_from(offset), u32::try_from(var_size))
            {
                out.push(GlobalVar {
                    name,
                    map,
                    offset,
                    size: var_size,
                    layout,
                });
            }
        }
    }
    out
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

/// Legacy definitions: one symbol per map, the definition size being the section size over
/// the number of symbols (libbpf's rule). A definition is read as iproute2's
/// `struct bpf_elf_map`, whose first five fields are libbpf's `struct bpf_map_def`: shorter
/// ones leave the missing fields zero (libbpf's 20-byte definitions among them), longer ones
/// must be zero past the 36 bytes (libbpf's rule for definitions from newer headers).
/// Returns each map's `(inner_id, inner_idx)`.
fn legacy_maps(
    file: &File<'_>,
    section: usize,
    maps: &mut Vec<MapSpec>,
    index: &mut MapIndex,
) -> Result<Vec<(u32, u32)>, ElfError> {
    let s = &file.sections[section];
    let mut links = Vec::new();
    let mut syms: Vec<_> = file
        .symbols
        .iter()
        .filter(|y| {
            y.section == Some(section) && matches!(y.kind, SymKind::Object | SymKind::NoType)
        })
        .collect();
    if syms.is_empty() {
        return Ok(links);
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
        let mut fields = [0u8; ELF_MAP_SIZE];
        let known = def.len().min(ELF_MAP_SIZE);
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
        let spec = MapSpec {
            flags,
            read_only: flags & BPF_F_RDONLY_PROG != 0,
            pinning: field(6),
            legacy_id: field(5),
            ..MapSpec::new(
                sym.name.clone(),
                MapType::from_raw(field(0)),
                field(1),
                field(2),
                field(3),
            )
        };
        // `inner_id` and `inner_idx` are resolved once every map of the section is read.
        links.push((field(7), field(8)));
        index.defs.insert((section, sym.value), maps.len());
        maps.push(spec);
    }
    Ok(links)
}

/// The most maps one legacy section's `inner_id`/`inner_idx` links put into its maps of maps
/// together. Every map with an `id` and an `inner_idx` goes into every map of maps whose
/// `inner_id` is that `id`, so a section of `n` maps could ask for `n²/4` entries (a
/// megabyte of object, a gigabyte of entries); iproute2's objects link a few.
pub const MAX_INNER_LINKS: usize = 1 << 16;

/// iproute2's map-in-map links between the maps of one legacy section (`maps`, starting at
/// index `first` of the object's maps), given each one's `(inner_id, inner_idx)`: a map of
/// maps takes as its inner template the map whose `id` is its `inner_id` (the first such; not
/// a map of maps, as the kernel takes none as an inner map); a map with an `id`, no
/// `inner_id` and an `inner_idx` other than `-1` is put at key `inner_idx` of every map of
/// maps whose `inner_id` is its `id` (at most [`MAX_INNER_LINKS`] together). Linear in the
/// section's maps and links.
fn link_elf_maps(
    section: &str,
    maps: &mut [MapSpec],
    first: usize,
    raw: &[(u32, u32)],
) -> Result<(), ElfError> {
    let fail = |maps: &[MapSpec], i: usize, kind| ElfError::Map {
        section: section.to_string(),
        map: maps[i].name.clone(),
        kind,
    };
    // Each id's maps, in section order.
    let mut by_id: HashMap<u32, Vec<usize>> = HashMap::new();
    for (j, m) in maps.iter().enumerate().skip(first).take(raw.len()) {
        if m.legacy_id != 0 {
            by_id.entry(m.legacy_id).or_default().push(j);
        }
    }
    for (k, &(inner_id, _)) in raw.iter().enumerate() {
        let i = first + k;
        if !maps[i].kind.is_map_in_map() || inner_id == 0 {
            continue;
        }
        let template = by_id
            .get(&inner_id)
            .and_then(|v| v.first().copied())
            .ok_or_else(|| fail(maps, i, MapErrorKind::NoInnerMap(inner_id)))?;
        if maps[template].kind.is_map_in_map() {
            return Err(fail(maps, i, MapErrorKind::NestedInnerMap(inner_id)));
        }
        let mut inner = maps[template].clone();
        inner.name = format!("{}.inner", maps[i].name);
        inner.pinning = 0;
        maps[i].inner = Some(Box::new(inner));
    }
    let mut links = 0usize;
    for (o, &(outer_inner_id, _)) in raw.iter().enumerate() {
        let outer = first + o;
        if !maps[outer].kind.is_map_in_map() {
            continue;
        }
        let Some(inners) = by_id.get(&outer_inner_id) else {
            continue;
        };
        for &i in inners {
            let (inner_id, inner_idx) = raw[i - first];
            if inner_id != 0 || inner_idx == u32::MAX {
                continue;
            }
            links += 1;
            if links > MAX_INNER_LINKS {
                return Err(fail(
                    maps,
                    outer,
                    MapErrorKind::TooManyInnerLinks(MAX_INNER_LINKS),
                ));
            }
            maps[outer].init.push((inner_idx, MapInit::Map(i)));
        }
        // Stable: maps at one key stay in section order.
        maps[outer].init.sort_by_key(|(k, _)| *k);
    }
    Ok(())
}

/// BTF-defined maps: each variable of the `.maps` DATASEC is a struct whose members encode the
/// definition in their types (see [`read_btf_def`]); relocations of `.maps` fill the
/// `values` initialisers.
fn btf_maps(
    file: &File<'_>,
    btf: &Btf<'_>,
    section: usize,
    maps: &mut Vec<MapSpec>,
    index: &mut MapIndex,
) -> Result<(), ElfError> {
    let sec_name = &file.sections[section].name;
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
        let sym = file
            .symbols
            .iter()
            .find(|y| y.section == Some(section) && y.name == name);
        let offset = sym.map_or(u64::from(var.offset), |y| y.value);
        let size = sym.map_or(u64::from(var.size), |y| y.size);
        let (spec, values_at) =
            read_btf_def(btf, var.type_id, &name).map_err(|kind| ElfError::Map {
                section: sec_name.clone(),
                map: name.clone(),
                kind,
            })?;
        found.push((offset, size, values_at, spec));
    }
    found.sort_by_key(|(offset, ..)| *offset);
    index.def_sections.push(section);
    let first = maps.len();
    for (offset, _, _, spec) in &found {
        index.defs.insert((section, *offset), maps.len());
        maps.push(spec.clone());
    }
    for r in &file.sections[section].relocs {
        // The definition holding the relocated pointer, and its slot in `values`.
        let Some((k, (offset, _, values_at, _))) =
            found.iter().enumerate().find(|(_, (o, size, ..))| {
                *o <= r.offset && r.offset.saturating_add(PTR_SIZE) <= o.saturating_add(*size)
            })
        else {
            // libbpf: "cannot find map at r_offset".
            let sym = file.symbols.get(r.symbol as usize);
            return Err(ElfError::Relocation {
                section: sec_name.clone(),
                offset: r.offset,
                kind: RelocErrorKind::NoMap {
                    symbol: sym.map_or_else(|| format!("#{}", r.symbol), |y| file.symbol_label(y)),
                    target: sec_name.clone(),
                    offset: i64::try_from(r.offset).unwrap_or(i64::MAX),
                },
            });
        };
        let i = first + k;
        let sym = file.symbols.get(r.symbol as usize);
        let target = sym.map_or_else(|| format!("#{}", r.symbol), |y| file.symbol_label(y));
        let rel = r.offset - offset;
        let err = |slot: u64, reason| ElfError::Map {
            section: sec_name.clone(),
            map: maps[i].name.clone(),
            kind: MapErrorKind::Init {
                slot: slot as u32,
                target: target.clone(),
                reason,
            },
        };
        let Some(values_at) = *values_at else {
            return Err(err(0, "the definition has no `values` member"));
        };
        if rel < values_at || !(rel - values_at).is_multiple_of(PTR_SIZE) {
            return Err(err(0, "the relocation is not on an element of `values`"));
        }
        let slot = (rel - values_at) / PTR_SIZE;
        if slot >= u64::from(maps[i].max_entries) {
            return Err(err(slot, "the key is not below max_entries"));
        }
        let Some(sym) = sym else {
            return Err(err(slot, "no such symbol"));
        };
        let init = if maps[i].kind.is_map_in_map() {
            if maps[i].kind == MapKind::HashOfMaps.into() && maps[i].key_size != 4 {
                return Err(err(
                    slot,
                    "a hash of maps initialised this way needs 4-byte keys",
                ));
            }
            let target = (sym.section == Some(section))
                .then(|| index.defs.get(&(section, sym.value)))
                .flatten()
                .ok_or_else(|| err(slot, "not a map of .maps"))?;
            MapInit::Map(*target)
        } else {
            let is_program = sym.kind == SymKind::Func
                && !sym.local
                && sym
                    .section
                    .is_some_and(|s| file.sections[s].kind == SectionKind::Code);
            if !is_program {
                return Err(err(slot, "not a program's entry function"));
            }
            MapInit::Program(sym.name.clone())
        };
        let m = &mut maps[i];
        m.init.retain(|(key, _)| u64::from(*key) != slot);
        m.init.push((slot as u32, init));
        m.init.sort_by_key(|(key, _)| *key);
    }
    Ok(())
}

/// Reads one BTF map definition, as libbpf's `parse_btf_map_def` does: `type`, `key_size`,
/// `value_size`, `max_entries`, `map_flags`, `numa_node`, `pinning` and `map_extra` are
/// `int (*name)[N]` (the value is N); `key` and `value` are `T *name` (the value is
/// `sizeof(T)`); `values`, the last member of a program array or map of maps, is a
/// zero-length array of pointers (`__array(values, …)`): its elements are 4-byte program or
/// map handles, and a map of maps' element type is the definition of its inner maps. Returns the spec and the byte
/// offset of `values` in the definition, if any.
fn read_btf_def(
    btf: &Btf<'_>,
    var_id: u32,
    name: &str,
) -> Result<(MapSpec, Option<u64>), MapErrorKind> {
    read_def(btf, var_id, name, false)
}

fn read_def(
    btf: &Btf<'_>,
    var_id: u32,
    name: &str,
    is_inner: bool,
) -> Result<(MapSpec, Option<u64>), MapErrorKind> {
    let b = MapErrorKind::Btf;
    let struct_id = btf.skip_modifiers(var_id).map_err(b)?;
    let Kind::Struct(members) = &btf.get(struct_id).map_err(b)?.kind else {
        return Err(MapErrorKind::NotStruct(struct_id));
    };
    let mut kind = None;
    let (mut key, mut key_size, mut value, mut value_size) = (None, None, None, None);
    let (mut max_entries, mut flags, mut numa_node, mut pinning) = (0, 0, 0, 0);
    let mut map_extra = 0;
    let mut values = None;
    let mut timer_off = None;
    for (i, m) in members.iter().enumerate() {
        let member = btf.name(m.name_off).map_err(b)?;
        match member.as_str() {
            "type" => kind = Some(MapType::from_raw(array_len(btf, m.type_id, &member)?)),
            "key_size" => key_size = Some(array_len(btf, m.type_id, &member)?),
            "value_size" => value_size = Some(array_len(btf, m.type_id, &member)?),
            "max_entries" => max_entries = array_len(btf, m.type_id, &member)?,
            "map_flags" => flags = array_len(btf, m.type_id, &member)?,
            "numa_node" => numa_node = array_len(btf, m.type_id, &member)?,
            "pinning" => {
                if is_inner {
                    return Err(MapErrorKind::Values("an inner map cannot be pinned"));
                }
                // Kept as declared and reported only (bpfx pins nothing): besides libbpf's
                // LIBBPF_PIN_NONE (0) and LIBBPF_PIN_BY_NAME (1), loaders define their own
                // (cilium's CILIUM_PIN_REPLACE, 16, which its agent rewrites before loading).
                pinning = array_len(btf, m.type_id, &member)?;
            }
            "key" => key = Some(pointee_size(btf, m.type_id, &member)?),
            "value" => {
                value = Some(pointee_size(btf, m.type_id, &member)?);
                timer_off = timer_offset(btf, m.type_id);
            }
            // Per-type extra data (a bloom filter's hash count): the runtime checks it.
            "map_extra" => map_extra = u64::from(array_len(btf, m.type_id, &member)?),
            "values" => {
                if is_inner {
                    return Err(MapErrorKind::Values("inner maps cannot have inner maps"));
                }
                if i + 1 != members.len() {
                    return Err(MapErrorKind::Values("must be the last member"));
                }
                values = Some((m.bit_offset / 8, values_elem(btf, m.type_id, kind)?));
            }
            _ => return Err(MapErrorKind::UnknownMember(member)),
        }
    }
    let kind = kind.ok_or(MapErrorKind::NoType)?;
    if values.is_some() {
        // Program and map handles are 4-byte file descriptors to the kernel.
        if let Some(v) = value.or(value_size).filter(|&v| v != 4) {
            return Err(MapErrorKind::Conflict {
                what: "value",
                a: v,
                b: 4,
            });
        }
        value_size = Some(4);
    }
    let pick = |what, typed: Option<u32>, sized: Option<u32>| match (typed, sized) {
        (Some(a), Some(b)) if a != b => Err(MapErrorKind::Conflict { what, a, b }),
        (a, b) => Ok(a.or(b).unwrap_or(0)),
    };
    if matches!(kind, MapType::Kind(MapKind::RingBuf) | MapType::Other(31)) {
        max_entries = ringbuf_size(max_entries);
    }
    let inner = match values {
        Some((_, Some(inner_id))) => {
            let (inner, _) = read_def(btf, inner_id, &format!("{name}.inner"), true)?;
            Some(Box::new(inner))
        }
        _ => None,
    };
    let (key_size, value_size) = (
        pick("key", key, key_size)?,
        pick("value", value, value_size)?,
    );
    let spec = MapSpec {
        flags,
        read_only: flags & BPF_F_RDONLY_PROG != 0,
        pinning,
        numa_node,
        map_extra,
        inner,
        timer_off,
        ..MapSpec::new(name, kind, key_size, value_size, max_entries)
    };
    Ok((spec, values.map(|(at, _)| u64::from(at))))
}

/// Checks the type of `values` (`T *values[]`) against the map type: a program array's `T` is
/// a function prototype, a map of maps' a struct (the inner definition, whose id is
/// returned).
fn values_elem(
    btf: &Btf<'_>,
    type_id: u32,
    kind: Option<MapType>,
) -> Result<Option<u32>, MapErrorKind> {
    let b = MapErrorKind::Btf;
    let is_map_in_map = kind.is_some_and(MapType::is_map_in_map);
    if !is_map_in_map && kind != Some(MapKind::ProgArray.into()) {
        return Err(MapErrorKind::Values(
            "only program arrays and maps of maps have values (and `type` must come first)",
        ));
    }
    let array = btf
        .get(btf.skip_modifiers(type_id).map_err(b)?)
        .map_err(b)?;
    let Kind::Array { elem, nelems: 0 } = array.kind else {
        return Err(MapErrorKind::Values("not a zero-length array"));
    };
    let ptr = btf.get(btf.skip_modifiers(elem).map_err(b)?).map_err(b)?;
    if !matches!(ptr.kind, Kind::Ptr) {
        return Err(MapErrorKind::Values("elements are not pointers"));
    }
    let target_id = btf.skip_modifiers(ptr.size_or_type).map_err(b)?;
    match (&btf.get(target_id).map_err(b)?.kind, is_map_in_map) {
        (Kind::FuncProto(_), false) => Ok(None),
        (Kind::Struct(_), true) => Ok(Some(target_id)),
        (_, false) => Err(MapErrorKind::Values(
            "a program array's elements must point to functions",
        )),
        (_, true) => Err(MapErrorKind::Values(
            "a map of maps' elements must point to the inner map's definition",
        )),
    }
}

/// libbpf's adjustment of a ring buffer's size: the kernel wants a power-of-two multiple of
/// the page size, so a size that is not one is rounded up to the next that is (0 stays 0,
/// for the kernel to refuse; a size past the largest such `u32` is left alone).
fn ringbuf_size(size: u32) -> u32 {
    let page = RINGBUF_PAGE_SIZE;
    if size == 0 || (size.is_multiple_of(page) && (size / page).is_power_of_two()) {
        return size;
    }
    let mut mul = 1u32;
    while let Some(bytes) = mul.checked_mul(page) {
        if bytes > size {
            return bytes;
        }
        mul = match mul.checked_mul(2) {
            Some(m) => m,
            None => break,
        };
    }
    size
}

/// iproute2's tail calls: the program of a section named `<id>/<key>` (each a C number, as
/// `%i` reads it) goes at `key` of the legacy map whose `id` is `id` (sections whose map id
/// names no map are left alone, as tc leaves them). A key at or past the map's
/// `max_entries` is an error, as it is for tc.
pub(crate) fn iproute2_tail_calls(
    maps: &mut [MapSpec],
    programs: &[ProgramSpec],
) -> Result<(), ElfError> {
    let mut done = Vec::new();
    for p in programs {
        let Some((id, key)) = p.section.split_once('/') else {
            continue;
        };
        let (Some(id), Some(key)) = (c_number(id), c_number(key)) else {
            continue;
        };
        // tc loads a section as one program: its first.
        if id == 0 || done.contains(&p.section) {
            continue;
        }
        done.push(p.section.clone());
        let Some(m) = maps.iter_mut().find(|m| m.legacy_id == id) else {
            continue;
        };
        if key >= m.max_entries || m.kind != MapKind::ProgArray.into() {
            return Err(ElfError::Map {
                section: "maps".into(),
                map: m.name.clone(),
                kind: MapErrorKind::Init {
                    slot: key,
                    target: p.name.clone(),
                    reason: if key >= m.max_entries {
                        "section <id>/<key>: the key is not below max_entries"
                    } else {
                        "section <id>/<key>: the map with that id is not a program array"
                    },
                },
            });
        }
        m.init.retain(|(k, _)| *k != key);
        m.init.push((key, MapInit::Program(p.name.clone())));
        m.init.sort_by_key(|(k, _)| *k);
    }
    Ok(())
}

/// A `u32` as C's `%i` reads it: decimal, `0x` hex or `0` octal.
fn c_number(s: &str) -> Option<u32> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        u32::from_str_radix(hex, 16).ok()
    } else if s.len() > 1 && s.starts_with('0') {
        u32::from_str_radix(&s[1..], 8).ok()
    } else {
        s.parse().ok()
    }
}

/// Checks that the programs named by program-array initialisers exist (libbpf: "isn't a
/// valid program reference").
pub(crate) fn check_prog_inits(maps: &[MapSpec], programs: &[ProgramSpec]) -> Result<(), ElfError> {
    for m in maps {
        for (slot, init) in &m.init {
            if let MapInit::Program(p) = init
                && !programs.iter().any(|q| &q.name == p)
            {
                return Err(ElfError::Map {
                    section: ".maps".into(),
                    map: m.name.clone(),
                    kind: MapErrorKind::Init {
                        slot: *slot,
                        target: p.clone(),
                        reason: "not a program of the object",
                    },
                });
            }
        }
    }
    Ok(())
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

/// The BTF layouts of each map's key and value, by index in `maps`: for a BTF-defined map
/// (`.maps`), the types its `key` and `value` members point to; `None` for a member it
/// lacks (sizes given by `key_size`/`value_size`), for legacy definitions and global data,
/// and for every map of an object without BTF.
pub(crate) fn layouts(btf: Option<&Result<Btf<'_>, BtfError>>, maps: &[MapSpec]) -> Vec<MapLayout> {
    let btf = btf.and_then(|b| b.as_ref().ok());
    maps.iter()
        .map(|m| btf.map_or_else(MapLayout::default, |b| def_layout(b, &m.name)))
        .collect()
}

/// The key and value layouts of the BTF map definition of the `.maps` variable `name`.
fn def_layout(btf: &Btf<'_>, name: &str) -> MapLayout {
    let mut out = MapLayout::default();
    let in_maps = btf.datasec(".maps").is_some_and(|vars| {
        vars.iter().any(|v| {
            btf.get(v.type_id)
                .and_then(|t| btf.name(t.name_off))
                .is_ok_and(|n| n == name)
        })
    });
    let Some(var) = btf.var_or_func(name).filter(|_| in_maps) else {
        return out;
    };
    let Ok(def) = btf.skip_modifiers(var).and_then(|id| btf.get(id)) else {
        return out;
    };
    let Kind::Struct(members) = &def.kind else {
        return out;
    };
    for m in members {
        let pointee = || {
            let ptr = btf.get(btf.skip_modifiers(m.type_id).ok()?).ok()?;
            matches!(ptr.kind, Kind::Ptr).then(|| btf.layout(ptr.size_or_type))
        };
        match btf.name(m.name_off).as_deref() {
            Ok("key") => out.key = pointee(),
            Ok("value") => out.value = pointee(),
            _ => {}
        }
    }
    out
}

/// The byte offset of the `struct bpf_timer` in the struct `value`'s pointer type points to
/// (`__type(value, struct val)`), if it holds one: a member of the struct, or of a struct
/// (or union) member of it at any depth up to [`MAX_DEPTH`], as the kernel's verifier finds
/// special fields in nested structs (since Linux 6.10; `struct frag_val { struct frag_rule
/// { struct bpf_timer timer; ... } rule; ... }` puts the timer at `rule`'s offset plus its
/// own). The first in member order wins; arrays are not searched.
pub(crate) fn timer_offset(btf: &Btf<'_>, ptr_type: u32) -> Option<u32> {
    let ptr = btf.get(btf.skip_modifiers(ptr_type).ok()?).ok()?;
    let mut walk = MAX_WALK;
    timer_in(btf, ptr.size_or_type, 0, &mut walk)
}

/// The byte offset of the first `struct bpf_timer` among the members of the struct or union
/// `type_id` and, depth first, of its struct and union members; none past [`MAX_WALK`]
/// structs searched.
fn timer_in(btf: &Btf<'_>, type_id: u32, depth: u32, walk: &mut u32) -> Option<u32> {
    if depth >= MAX_DEPTH {
        return None;
    }
    *walk = walk.checked_sub(1)?;
    let t = btf.get(btf.skip_modifiers(type_id).ok()?).ok()?;
    let Kind::Struct(members) = &t.kind else {
        return None;
    };
    members.iter().find_map(|m| {
        if m.bits != 0 || m.bit_offset % 8 != 0 {
            return None;
        }
        let mt = btf.get(btf.skip_modifiers(m.type_id).ok()?).ok()?;
        if !matches!(mt.kind, Kind::Struct(_)) {
            return None;
        }
        let off = m.bit_offset / 8;
        if btf.name(mt.name_off).is_ok_and(|n| n == "bpf_timer") {
            return Some(off);
        }
        timer_in(btf, m.type_id, depth + 1, walk).and_then(|o| off.checked_add(o))
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `outers` arrays of maps with inner_id 5, then `inners` arrays with id 5, each at its
    /// own `inner_idx`.
    fn linked_section(outers: u32, inners: u32) -> (Vec<MapSpec>, Vec<(u32, u32)>) {
        let mut maps = Vec::new();
        let mut raw = Vec::new();
        for o in 0..outers {
            let kind = MapType::Kind(MapKind::ArrayOfMaps);
            maps.push(MapSpec::new(format!("outer{o}"), kind, 4, 4, inners));
            raw.push((5, u32::MAX));
        }
        for i in 0..inners {
            let mut m = MapSpec::new(format!("inner{i}"), MapType::Kind(MapKind::Array), 4, 4, 1);
            m.legacy_id = 5;
            maps.push(m);
            raw.push((0, i));
        }
        (maps, raw)
    }

    #[test]
    fn legacy_map_in_map_links_are_bounded() {
        // Every inner goes into every outer: 200 * 200 links fit, 300 * 300 do not (before
        // the bound, a section of n maps could ask for n²/4 entries).
        let (mut maps, raw) = linked_section(200, 200);
        link_elf_maps("maps", &mut maps, 0, &raw).unwrap();
        assert_eq!(maps[0].init.len(), 200);
        assert_eq!(maps[199].init[7], (7, MapInit::Map(207)));
        assert_eq!(maps[0].inner.as_ref().unwrap().name, "outer0.inner");
        let (mut maps, raw) = linked_section(300, 300);
        let e = link_elf_maps("maps", &mut maps, 0, &raw).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!(
                "section \"maps\": map \"outer218\": its maps put more than {MAX_INNER_LINKS} maps \
                 into maps of maps"
            )
        );
    }

    #[test]
    fn ring_buffer_sizes_round_as_libbpf_rounds_them() {
        assert_eq!(ringbuf_size(0), 0, "left for the runtime to refuse");
        assert_eq!(ringbuf_size(1), 4096);
        assert_eq!(ringbuf_size(4096), 4096);
        assert_eq!(ringbuf_size(5000), 8192);
        assert_eq!(
            ringbuf_size(3 * 4096),
            4 * 4096,
            "a multiple of pages, not a power of two"
        );
        assert_eq!(ringbuf_size(1 << 20), 1 << 20);
        assert_eq!(
            ringbuf_size((1 << 31) + 1),
            (1 << 31) + 1,
            "no larger size fits"
        );
    }
}

//! Just enough of BTF (the BPF Type Format, `.BTF`) to read BTF-defined maps: the header, every
//! type record (so each can be skipped by its kind's layout), the string table, and size
//! resolution through modifiers, pointers and arrays.
//!
//! Layout (little-endian): a header `{magic: u16 = 0xeb9f, version: u8 = 1, flags: u8, hdr_len:
//! u32, type_off: u32, type_len: u32, str_off: u32, str_len: u32}`, offsets counted from the
//! header's end; then type records `{name_off: u32, info: u32, size_or_type: u32}` followed by a
//! kind-dependent tail. Type ids count from 1; id 0 is `void`.

use crate::error::BtfError;

/// The deepest chain of modifiers, typedefs and arrays followed before giving up (libbpf's
/// `MAX_RESOLVE_DEPTH`); it also bounds the work on a malicious cycle.
pub(crate) const MAX_DEPTH: u32 = 32;

/// The most types one walk through a type's members visits (its alignment, its display
/// layout, a search for a special field in it). `MAX_DEPTH` bounds how deep a walk goes, not how
/// wide: a struct of two members of a struct of two members of … is a few records that nest
/// 2^32 members, so a walk that follows every member must count them too.
pub(crate) const MAX_WALK: u32 = 1 << 16;

/// Pointer size of the BPF target, in bytes.
const PTR_SIZE: u32 = 8;

const MAGIC: u16 = 0xeb9f;
const HEADER_LEN: usize = 24;

/// A struct or union member.
#[derive(Clone, Debug)]
pub(crate) struct Member {
    pub(crate) name_off: u32,
    pub(crate) type_id: u32,
    /// Offset from the start of the struct, in bits (bitfield sizes stripped).
    pub(crate) bit_offset: u32,
    /// A bitfield's width in bits (from a `kind_flag` struct's offset word); 0 otherwise.
    pub(crate) bits: u32,
}

/// One variable of a `DATASEC`.
#[derive(Clone, Debug)]
pub(crate) struct VarSecInfo {
    pub(crate) type_id: u32,
    pub(crate) offset: u32,
    pub(crate) size: u32,
}

/// How a value of a BTF type reads, for tools that show values by field
/// ([`crate::GlobalVar::layout`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Layout {
    /// An integer (or an enum) of 1, 2, 4 or 8 bytes, little-endian.
    Int {
        /// Size in bytes.
        size: u32,
        /// Two's complement signed.
        signed: bool,
    },
    /// A `_Bool`.
    Bool,
    /// `len` elements one after the other.
    Array {
        /// The element's layout.
        elem: Box<Layout>,
        /// The number of elements.
        len: u32,
    },
    /// A struct (or a union: its members then all start at 0) of `size` bytes.
    Struct {
        /// Size in bytes.
        size: u32,
        /// The members in declaration order.
        fields: Vec<Field>,
    },
    /// Anything else (a pointer, a float, an integer of another size), as this many bytes.
    Bytes(u32),
}

/// A member of a [`Layout::Struct`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field {
    /// Its name (empty for an anonymous member).
    pub name: String,
    /// Its offset from the struct's start, in bits.
    pub bit_offset: u32,
    /// A bitfield's width in bits; 0 for a whole member.
    pub bits: u32,
    /// How it reads.
    pub layout: Layout,
}

/// `BTF_INT_SIGNED`: the integer encoding bit of signed types.
pub(crate) const INT_SIGNED: u32 = 1 << 0;
/// `BTF_INT_BOOL`: the integer encoding bit of `_Bool`.
pub(crate) const INT_BOOL: u32 = 1 << 2;

/// The kinds this crate looks into; every other kind is kept only so ids stay aligned.
#[derive(Clone, Debug)]
pub(crate) enum Kind {
    /// FLOAT: sized by `size_or_type`.
    Sized,
    /// INT, sized by `size_or_type`, with its encoding bits ([`INT_SIGNED`], [`INT_BOOL`]).
    Int {
        encoding: u32,
    },
    /// ENUM and ENUM64, sized by `size_or_type`.
    Enum,
    /// STRUCT and UNION, sized by `size_or_type`.
    Struct(Vec<Member>),
    Ptr,
    Array {
        elem: u32,
        nelems: u32,
    },
    /// TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG: the type is `size_or_type`.
    Modifier,
    /// VAR: the type is `size_or_type`.
    Var,
    Datasec(Vec<VarSecInfo>),
    /// FUNC: the prototype is `size_or_type`; no size.
    Func,
    /// FUNC_PROTO: no size; the parameters' type ids, in order.
    FuncProto(Vec<u32>),
    /// FWD: a declared, undefined struct (`union` with `kind_flag`); no size.
    Fwd,
    /// DECL_TAG: no size.
    Unsized,
}

#[derive(Clone, Debug)]
pub(crate) struct Type {
    pub(crate) name_off: u32,
    pub(crate) kind: Kind,
    pub(crate) size_or_type: u32,
}

/// A parsed `.BTF` section.
#[derive(Debug)]
pub(crate) struct Btf<'a> {
    strings: &'a [u8],
    /// `types[id - 1]`.
    types: Vec<Type>,
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    let bytes = b.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?))
}

impl<'a> Btf<'a> {
    /// Parses the header, the string table and every type record.
    pub(crate) fn parse(data: &'a [u8]) -> Result<Btf<'a>, BtfError> {
        let magic = data
            .get(0..2)
            .map(|m| u16::from_le_bytes([m[0], m[1]]))
            .ok_or(BtfError::Truncated("header"))?;
        if magic != MAGIC {
            return Err(BtfError::Magic(magic));
        }
        let version = *data.get(2).ok_or(BtfError::Truncated("header"))?;
        if version != 1 {
            return Err(BtfError::Version(version));
        }
        let field = |at| u32_at(data, at).ok_or(BtfError::Truncated("header"));
        let hdr_len = field(4)? as usize;
        if hdr_len < HEADER_LEN {
            return Err(BtfError::Truncated("header"));
        }
        let (type_off, type_len) = (field(8)? as usize, field(12)? as usize);
        let (str_off, str_len) = (field(16)? as usize, field(20)? as usize);
        let region = |off: usize, len: usize, what| {
            let start = hdr_len.checked_add(off).ok_or(BtfError::Truncated(what))?;
            let end = start.checked_add(len).ok_or(BtfError::Truncated(what))?;
            data.get(start..end).ok_or(BtfError::Truncated(what))
        };
        let type_data = region(type_off, type_len, "type section")?;
        let strings = region(str_off, str_len, "string section")?;
        let mut types = Vec::new();
        let mut at = 0;
        while at < type_data.len() {
            let id = types.len() as u32 + 1;
            let (ty, len) = parse_type(type_data, at, id)?;
            types.push(ty);
            at += len;
        }
        Ok(Btf { strings, types })
    }

    /// The NUL-terminated string at `off` of the string section.
    pub(crate) fn name(&self, off: u32) -> Result<String, BtfError> {
        let rest = self
            .strings
            .get(off as usize..)
            .ok_or(BtfError::String(off))?;
        let end = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or(BtfError::String(off))?;
        Ok(String::from_utf8_lossy(&rest[..end]).into_owned())
    }

    /// The type with this id; id 0 (`void`) has no record.
    pub(crate) fn get(&self, id: u32) -> Result<&Type, BtfError> {
        id.checked_sub(1)
            .and_then(|i| self.types.get(i as usize))
            .ok_or(BtfError::TypeId(id))
    }

    /// The `DATASEC` named `name`, if any.
    pub(crate) fn datasec(&self, name: &str) -> Option<&[VarSecInfo]> {
        self.types.iter().find_map(|t| match &t.kind {
            Kind::Datasec(vars) if self.name(t.name_off).is_ok_and(|n| n == name) => {
                Some(vars.as_slice())
            }
            _ => None,
        })
    }

    /// Follows typedefs and qualifiers (and VARs) to the underlying type id.
    pub(crate) fn skip_modifiers(&self, mut id: u32) -> Result<u32, BtfError> {
        for _ in 0..MAX_DEPTH {
            let t = self.get(id)?;
            match t.kind {
                Kind::Modifier | Kind::Var => id = t.size_or_type,
                _ => return Ok(id),
            }
        }
        Err(BtfError::TooDeep(id))
    }

    /// The size in bytes of a value of type `id`.
    pub(crate) fn size_of(&self, id: u32) -> Result<u32, BtfError> {
        self.size_at_depth(id, 0)
    }

    fn size_at_depth(&self, id: u32, depth: u32) -> Result<u32, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        let id = self.skip_modifiers(id)?;
        let t = self.get(id)?;
        match t.kind {
            Kind::Sized | Kind::Int { .. } | Kind::Enum | Kind::Struct(_) | Kind::Datasec(_) => {
                Ok(t.size_or_type)
            }
            Kind::Ptr => Ok(PTR_SIZE),
            Kind::Array { elem, nelems } => self
                .size_at_depth(elem, depth + 1)?
                .checked_mul(nelems)
                .ok_or(BtfError::Overflow(id)),
            Kind::Modifier
            | Kind::Var
            | Kind::Func
            | Kind::FuncProto(_)
            | Kind::Fwd
            | Kind::Unsized => Err(BtfError::NoSize(id)),
        }
    }

    /// The alignment in bytes of a value of type `id`, as C lays it out on the BPF target:
    /// a scalar's size (at most 8), an array's element alignment, a struct's largest member
    /// alignment.
    pub(crate) fn align_of(&self, id: u32) -> Result<u32, BtfError> {
        let mut walk = MAX_WALK;
        self.align_at_depth(id, 0, &mut walk).map_err(|e| match e {
            BtfError::TooLarge(_) => BtfError::TooLarge(id),
            e => e,
        })
    }

    fn align_at_depth(&self, id: u32, depth: u32, walk: &mut u32) -> Result<u32, BtfError> {
        if depth >= MAX_DEPTH {
            return Err(BtfError::TooDeep(id));
        }
        *walk = walk.checked_sub(1).ok_or(BtfError::TooLarge(id))?;
        let id = self.skip_modifiers(id)?;
        let t = self.get(id)?;
        match &t.kind {
            Kind::Sized | Kind::Int { .. } | Kind::Enum => Ok(t.size_or_type.clamp(1, 8)),
            Kind::Ptr => Ok(PTR_SIZE),
            Kind::Array { elem, .. } => self.align_at_depth(*elem, depth + 1, walk),
            Kind::Struct(members) => members.iter().try_fold(1, |a, m| {
                Ok(a.max(self.align_at_depth(m.type_id, depth + 1, walk)?))
            }),
            _ => Err(BtfError::NoSize(id)),
        }
    }

    /// How a value of type `id` reads, for display: its integers, arrays and structs with
    /// their members' names; anything else (pointers, floats, a type too deep) as bytes.
    /// Past [`MAX_WALK`] types, the rest of the value reads as bytes.
    pub(crate) fn layout(&self, id: u32) -> Layout {
        let mut walk = MAX_WALK;
        self.layout_at_depth(id, 0, &mut walk)
    }

    fn layout_at_depth(&self, id: u32, depth: u32, walk: &mut u32) -> Layout {
        let bytes = || Layout::Bytes(self.size_of(id).unwrap_or(0));
        if depth >= MAX_DEPTH || *walk == 0 {
            return bytes();
        }
        *walk -= 1;
        let Ok(t) = self.skip_modifiers(id).and_then(|id| self.get(id)) else {
            return bytes();
        };
        match &t.kind {
            Kind::Int { encoding } if *encoding & INT_BOOL != 0 => Layout::Bool,
            Kind::Int { encoding } if matches!(t.size_or_type, 1 | 2 | 4 | 8) => Layout::Int {
                size: t.size_or_type,
                signed: encoding & INT_SIGNED != 0,
            },
            Kind::Enum if matches!(t.size_or_type, 1 | 2 | 4 | 8) => Layout::Int {
                size: t.size_or_type,
                signed: false,
            },
            Kind::Array { elem, nelems } => Layout::Array {
                elem: Box::new(self.layout_at_depth(*elem, depth + 1, walk)),
                len: *nelems,
            },
            Kind::Struct(members) => Layout::Struct {
                size: t.size_or_type,
                fields: members
                    .iter()
                    .map(|m| Field {
                        name: self.name(m.name_off).unwrap_or_default(),
                        bit_offset: m.bit_offset,
                        bits: m.bits,
                        layout: self.layout_at_depth(m.type_id, depth + 1, walk),
                    })
                    .collect(),
            },
            _ => bytes(),
        }
    }

    /// The id of the type named `name` among the VARs and FUNCs, if any.
    pub(crate) fn var_or_func(&self, name: &str) -> Option<u32> {
        self.types.iter().enumerate().find_map(|(i, t)| {
            (matches!(t.kind, Kind::Var | Kind::Func)
                && self.name(t.name_off).is_ok_and(|n| n == name))
            .then_some(i as u32 + 1)
        })
    }

    /// The name of the struct (or union) the first parameter of function `func` points to,
    /// through typedefs and qualifiers on both sides of the pointer: the context type a
    /// program's BTF declares (`struct xdp_md *ctx` gives `xdp_md`). `None` when BTF has no
    /// FUNC of that name, or its first parameter is missing, not a pointer, or points to
    /// anything but a named struct, union or forward declaration.
    pub(crate) fn ctx_struct_name(&self, func: &str) -> Option<String> {
        let t = self.types.iter().find(|t| {
            matches!(t.kind, Kind::Func) && self.name(t.name_off).is_ok_and(|n| n == func)
        })?;
        let Kind::FuncProto(params) = &self.get(t.size_or_type).ok()?.kind else {
            return None;
        };
        let ptr = self.get(self.skip_modifiers(*params.first()?).ok()?).ok()?;
        if !matches!(ptr.kind, Kind::Ptr) {
            return None;
        }
        let target = self.get(self.skip_modifiers(ptr.size_or_type).ok()?).ok()?;
        match target.kind {
            Kind::Struct(_) | Kind::Fwd => {
                self.name(target.name_off).ok().filter(|n| !n.is_empty())
            }
            _ => None,
        }
    }

    /// The `DATASEC`s, with their names.
    pub(crate) fn datasecs(&self) -> impl Iterator<Item = (String, &[VarSecInfo])> + '_ {
        self.types.iter().filter_map(|t| match &t.kind {
            Kind::Datasec(vars) => Some((self.name(t.name_off).ok()?, vars.as_slice())),
            _ => None,
        })
    }
}

/// Parses the record at `at`, returning it and its length in bytes.
fn parse_type(data: &[u8], at: usize, id: u32) -> Result<(Type, usize), BtfError> {
    let word = |i: usize| u32_at(data, at + 4 * i).ok_or(BtfError::Truncated("type record"));
    let name_off = word(0)?;
    let info = word(1)?;
    let size_or_type = word(2)?;
    let vlen = (info & 0xffff) as usize;
    let kind_num = (info >> 24) & 0x1f;
    let kind_flag = info >> 31 != 0;
    let tail = |i: usize| word(3 + i);
    // Tail length in bytes, by kind (see the kernel's `btf_type` documentation).
    let (kind, tail_len) = match kind_num {
        // INT: one u32 of {encoding: 4 bits, offset: 8 bits, bits: 8 bits} from bit 24 down.
        1 => (
            Kind::Int {
                encoding: (tail(0)? >> 24) & 0xf,
            },
            4,
        ),
        2 => (Kind::Ptr, 0),
        // ARRAY: {type, index_type, nelems}.
        3 => (
            Kind::Array {
                elem: tail(0)?,
                nelems: tail(2)?,
            },
            12,
        ),
        // STRUCT, UNION: vlen × {name_off, type, offset}.
        4 | 5 => {
            let mut members = Vec::with_capacity(vlen.min(data.len() / 12));
            for m in 0..vlen {
                // With kind_flag the offset word holds the bitfield size in its top byte.
                let offset = tail(3 * m + 2)?;
                members.push(Member {
                    name_off: tail(3 * m)?,
                    type_id: tail(3 * m + 1)?,
                    bit_offset: if kind_flag {
                        offset & 0xff_ffff
                    } else {
                        offset
                    },
                    bits: if kind_flag { offset >> 24 } else { 0 },
                });
            }
            (Kind::Struct(members), 12 * vlen)
        }
        // ENUM: vlen × {name_off, val}.
        6 => (Kind::Enum, 8 * vlen),
        // FWD.
        7 => (Kind::Fwd, 0),
        // TYPEDEF, VOLATILE, CONST, RESTRICT.
        8..=11 => (Kind::Modifier, 0),
        // FUNC.
        12 => (Kind::Func, 0),
        // FUNC_PROTO: vlen × {name_off, type}.
        13 => {
            let mut params = Vec::with_capacity(vlen.min(data.len() / 8));
            for p in 0..vlen {
                params.push(tail(2 * p + 1)?);
            }
            (Kind::FuncProto(params), 8 * vlen)
        }
        // VAR: {linkage}.
        14 => (Kind::Var, 4),
        // DATASEC: vlen × {type, offset, size}.
        15 => {
            let mut vars = Vec::with_capacity(vlen.min(data.len() / 12));
            for v in 0..vlen {
                vars.push(VarSecInfo {
                    type_id: tail(3 * v)?,
                    offset: tail(3 * v + 1)?,
                    size: tail(3 * v + 2)?,
                });
            }
            (Kind::Datasec(vars), 12 * vlen)
        }
        // FLOAT.
        16 => (Kind::Sized, 0),
        // DECL_TAG: {component_idx}.
        17 => (Kind::Unsized, 4),
        // TYPE_TAG.
        18 => (Kind::Modifier, 0),
        // ENUM64: vlen × {name_off, val_lo32, val_hi32}.
        19 => (Kind::Enum, 12 * vlen),
        kind => return Err(BtfError::Kind { id, kind }),
    };
    let len = 12 + tail_len;
    if at + len > data.len() {
        return Err(BtfError::Truncated("type record"));
    }
    Ok((
        Type {
            name_off,
            kind,
            size_or_type,
        },
        len,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a `.BTF` blob from type records (`kind`, `vlen`, `size_or_type`, tail words);
    /// every record is named "m" (string offset 1) so name lookups resolve.
    fn blob(types: &[(u32, u32, u32, Vec<u32>)], names: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        for (kind, vlen, size_or_type, tail) in types {
            for w in [1, (kind << 24) | vlen, *size_or_type] {
                t.extend(w.to_le_bytes());
            }
            for w in tail {
                t.extend(w.to_le_bytes());
            }
        }
        let mut b = Vec::new();
        b.extend(MAGIC.to_le_bytes());
        b.extend([1, 0]);
        for w in [
            HEADER_LEN as u32,
            0,
            t.len() as u32,
            t.len() as u32,
            names.len() as u32,
        ] {
            b.extend(w.to_le_bytes());
        }
        b.extend(t);
        b.extend(names);
        b
    }

    /// Types 1..=30: structs of two members of the next one; 31 an int. A few hundred bytes
    /// that nest 2^30 ints, 30 deep (within `MAX_DEPTH`); 32 a pointer to the first struct.
    fn doubling_chain() -> Vec<u8> {
        let mut types: Vec<(u32, u32, u32, Vec<u32>)> = (1..=30u32)
            .map(|i| (4, 2, 8, vec![1, i + 1, 0, 1, i + 1, 32]))
            .collect();
        types.push((1, 0, 4, vec![0x20]));
        types.push((2, 0, 1, vec![]));
        blob(&types, b"\0m\0")
    }

    /// Counts the nodes of a layout.
    fn nodes(l: &Layout) -> u64 {
        1 + match l {
            Layout::Array { elem, .. } => nodes(elem),
            Layout::Struct { fields, .. } => fields.iter().map(|f| nodes(&f.layout)).sum(),
            _ => 0,
        }
    }

    #[test]
    fn walks_through_exponentially_nested_members_stop_after_max_walk_types() {
        // Before the walks were counted, `layout` built 2^31 nodes (the load ran out of
        // memory), and `align_of` and the timer search made 2^31 calls each.
        let data = doubling_chain();
        assert!(data.len() < 2048, "{} bytes", data.len());
        let btf = Btf::parse(&data).unwrap();
        let start = std::time::Instant::now();
        assert_eq!(btf.align_of(1), Err(BtfError::TooLarge(1)));
        let n = nodes(&btf.layout(1));
        assert!(n <= u64::from(MAX_WALK) + 64, "{n} nodes");
        assert_eq!(crate::maps::timer_offset(&btf, 32), None);
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
        // A chain short enough to walk whole still is: 2^10 ints, aligned to 4.
        assert_eq!(btf.align_of(21), Ok(4));
        assert_eq!(nodes(&btf.layout(21)), (1 << 11) - 1);
        assert_eq!(
            BtfError::TooLarge(1).to_string(),
            "type #1: nests too many members (more than 65536 to walk)"
        );
    }

    #[test]
    fn every_kind_is_skipped_by_its_layout_and_ids_stay_aligned() {
        let types = vec![
            (1, 0, 4, vec![0x20]),               // 1 INT, 4 bytes
            (2, 0, 1, vec![]),                   // 2 PTR -> 1
            (3, 0, 0, vec![1, 1, 5]),            // 3 ARRAY int[5]
            (4, 2, 16, vec![1, 1, 0, 1, 2, 64]), // 4 STRUCT, 2 members
            (5, 1, 8, vec![1, 2, 0]),            // 5 UNION, 1 member
            (6, 2, 4, vec![1, 0, 1, 1]),         // 6 ENUM, 2 values
            (7, 0, 0, vec![]),                   // 7 FWD
            (8, 0, 3, vec![]),                   // 8 TYPEDEF -> ARRAY
            (9, 0, 8, vec![]),                   // 9 VOLATILE -> TYPEDEF
            (10, 0, 9, vec![]),                  // 10 CONST -> VOLATILE
            (11, 0, 10, vec![]),                 // 11 RESTRICT -> CONST
            (13, 2, 1, vec![1, 1, 1, 2]),        // 12 FUNC_PROTO, 2 params
            (12, 0, 12, vec![]),                 // 13 FUNC
            (14, 0, 11, vec![1]),                // 14 VAR of RESTRICT chain
            (16, 0, 8, vec![]),                  // 15 FLOAT
            (17, 0, 14, vec![0xffff_ffff]),      // 16 DECL_TAG
            (18, 0, 5, vec![]),                  // 17 TYPE_TAG -> UNION
            (19, 1, 8, vec![1, 0, 1]),           // 18 ENUM64, 1 value
            (15, 1, 20, vec![14, 0, 20]),        // 19 DATASEC "m"
        ];
        let data = blob(&types, b"\0m\0");
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.types.len(), 19);
        assert_eq!(
            btf.size_of(14),
            Ok(20),
            "VAR -> RESTRICT -> CONST -> VOLATILE -> TYPEDEF -> int[5]"
        );
        assert_eq!(btf.size_of(17), Ok(8), "TYPE_TAG -> UNION");
        assert_eq!(btf.size_of(18), Ok(8));
        assert_eq!(btf.size_of(15), Ok(8));
        assert_eq!(btf.size_of(2), Ok(PTR_SIZE));
        assert_eq!(btf.size_of(7), Err(BtfError::NoSize(7)));
        assert_eq!(btf.size_of(13), Err(BtfError::NoSize(13)));
        assert_eq!(btf.size_of(99), Err(BtfError::TypeId(99)));
        let vars = btf
            .datasec("m")
            .expect("DATASEC found after every other kind");
        assert_eq!((vars[0].type_id, vars[0].offset), (14, 0));
    }

    #[test]
    fn the_context_struct_is_found_through_modifiers_and_nothing_else_is_taken_for_one() {
        // Every record is named "m".
        let types = vec![
            (4, 0, 8, vec![]),       // 1 STRUCT m
            (2, 0, 1, vec![]),       // 2 PTR -> STRUCT
            (8, 0, 2, vec![]),       // 3 TYPEDEF -> PTR
            (13, 1, 0, vec![1, 3]),  // 4 FUNC_PROTO (m: TYPEDEF)
            (12, 0, 4, vec![]),      // 5 FUNC m -> 4
            (1, 0, 4, vec![0]),      // 6 INT
            (13, 0, 0, vec![]),      // 7 FUNC_PROTO, no parameter
            (2, 0, 6, vec![]),       // 8 PTR -> INT
            (13, 1, 0, vec![1, 8]),  // 9 FUNC_PROTO (m: PTR -> INT)
            (10, 0, 11, vec![]),     // 10 CONST -> 11
            (10, 0, 10, vec![]),     // 11 CONST -> 10: a cycle
            (13, 1, 0, vec![1, 10]), // 12 FUNC_PROTO (m: the cycle)
            (13, 1, 0, vec![1, 99]), // 13 FUNC_PROTO (m: no such type)
        ];
        let data = blob(&types, b"\0m\0");
        let btf = Btf::parse(&data).unwrap();
        assert_eq!(btf.ctx_struct_name("m").as_deref(), Some("m"));
        assert_eq!(btf.ctx_struct_name("other"), None);
        // The same FUNC pointed at each other prototype: none names a struct.
        for proto in [7, 9, 12, 13, 6, 99] {
            let mut types = types.clone();
            types[4].2 = proto;
            let data = blob(&types, b"\0m\0");
            let btf = Btf::parse(&data).unwrap();
            assert_eq!(btf.ctx_struct_name("m"), None, "prototype {proto}");
        }
    }

    #[test]
    fn malformed_blobs_are_errors() {
        assert_eq!(Btf::parse(&[]).unwrap_err(), BtfError::Truncated("header"));
        let mut bad = blob(&[(1, 0, 4, vec![0])], b"\0");
        bad[0] = 0;
        assert!(matches!(Btf::parse(&bad), Err(BtfError::Magic(_))));
        let unknown = blob(&[(25, 0, 0, vec![])], b"\0");
        assert_eq!(
            Btf::parse(&unknown).unwrap_err(),
            BtfError::Kind { id: 1, kind: 25 }
        );
        // A struct announcing more members than the section holds.
        let short = blob(&[(4, 3, 8, vec![1, 1, 0])], b"\0");
        assert_eq!(
            Btf::parse(&short).unwrap_err(),
            BtfError::Truncated("type record")
        );
        // A modifier cycle is cut off, not followed forever.
        let cycle = blob(&[(8, 0, 2, vec![]), (10, 0, 1, vec![])], b"\0");
        let cycle = Btf::parse(&cycle).unwrap();
        assert!(matches!(cycle.size_of(1), Err(BtfError::TooDeep(_))));
        // An array whose size overflows 32 bits.
        let big = blob(
            &[(1, 0, 8, vec![0]), (3, 0, 0, vec![1, 1, u32::MAX])],
            b"\0",
        );
        assert_eq!(
            Btf::parse(&big).unwrap().size_of(2),
            Err(BtfError::Overflow(2))
        );
    }
}

//! Extern symbols: what an object declares and leaves to its loader to define.
//!
//! clang emits an extern as an undefined symbol, and (with `-g`) a BTF `VAR` or `FUNC` listed
//! in the `DATASEC` of the section its declaration names. As in libbpf, that section tells
//! the kind:
//! - `.kconfig` (`__kconfig`): a value of the kernel configuration (`CONFIG_*`) or one the
//!   loader computes (`LINUX_KERNEL_VERSION`). They are laid out in one read-only array map
//!   named [`KCONFIG_MAP`], sorted by alignment (largest first), then size, then name, at
//!   most [`crate::MAX_DATA_SIZE`] bytes in all; an `lddw` of one becomes the address of its
//!   bytes in that map's value.
//! - `.ksyms` (`__ksym`): a kernel variable or function (kfunc). bpfx has no kernel to take
//!   them from: an `lddw` of one loads 0, as libbpf loads an unresolved weak one, and a call
//!   becomes a call of helper [`POISON_CALL_BASE`]` + index`, which no helper has, as libbpf
//!   poisons a call of an unresolved weak kfunc — refused by the verifier where reachable.
//! - anything else — a function or variable declared without a section, or any extern of an
//!   object without BTF — is what static linking left undefined: unresolved.
//!
//! Which extern each instruction refers to is kept per program ([`crate::ExternUse`]), so the
//! runtime can refuse exactly the programs that need an extern it cannot define.

use crate::btf::{Btf, INT_BOOL, INT_SIGNED, Kind};
use crate::error::{BtfError, ElfError, ExternErrorKind, SectionErrorKind};
use crate::file::{File, SymKind};
use crate::maps::{BPF_F_MMAPABLE, BPF_F_RDONLY_PROG, MAX_DATA_SIZE, MapIndex};
use crate::{Extern, ExternKind, KconfigType, MapKind, MapSpec, Object};
use std::collections::HashMap;
use thiserror::Error;

/// Name of the map holding the values of `__kconfig` externs (libbpf's name).
pub const KCONFIG_MAP: &str = ".kconfig";

/// The helper id a call of an extern function is rewritten to, plus the extern's index in
/// [`Object::externs`] (libbpf's `POISON_CALL_KFUNC_BASE`).
pub const POISON_CALL_BASE: i32 = 2_002_000_000;

/// `KERNEL_VERSION(a, b, c)` of the kernel headers: `a << 16 | b << 8 | min(c, 255)`.
pub const fn kernel_version(a: u8, b: u8, c: u16) -> u32 {
    ((a as u32) << 16) | ((b as u32) << 8) | if c > 255 { 255 } else { c as u32 }
}

/// The value `LINUX_KERNEL_VERSION` takes unless the embedder gives one:
/// `KERNEL_VERSION(6, 6, 0)`, the long-term kernel whose BPF semantics bpfx follows.
pub const DEFAULT_KERNEL_VERSION: u32 = kernel_version(6, 6, 0);

/// Symbol index → index in the extern list.
pub(crate) type ExternIndex = HashMap<u32, usize>;

/// Collects every extern symbol (undefined and named) in symbol-table order, with its kind
/// and, for `__kconfig` ones, its place in the `.kconfig` map.
pub(crate) fn collect(
    file: &File<'_>,
    btf: Option<&Result<Btf<'_>, BtfError>>,
) -> Result<(Vec<Extern>, ExternIndex), ElfError> {
    let mut externs = Vec::new();
    let mut index = ExternIndex::new();
    // (extern, size, alignment) of the `__kconfig` ones, laid out once all are known.
    let mut kconfig = Vec::new();
    for (i, sym) in file.symbols.iter().enumerate() {
        if !sym.undefined
            || sym.name.is_empty()
            || !matches!(sym.kind, SymKind::NoType | SymKind::Object | SymKind::Func)
        {
            continue;
        }
        let btf = match btf {
            Some(Ok(btf)) => Some(btf),
            Some(Err(e)) => return Err(e.clone().into()),
            None => None,
        };
        let err = |kind| ElfError::Extern {
            name: sym.name.clone(),
            kind,
        };
        let kind = match btf {
            Some(btf) => classify(btf, &sym.name).map_err(err)?,
            None => Classified::Unresolved,
        };
        let kind = match kind {
            Classified::Kconfig { size, align, ty } => {
                kconfig.push((externs.len(), size, align));
                ExternKind::Kconfig {
                    offset: 0,
                    size,
                    ty,
                }
            }
            Classified::KsymVar => ExternKind::KsymVar,
            Classified::KsymFunc => ExternKind::KsymFunc,
            Classified::Unresolved => ExternKind::Unresolved,
        };
        index.insert(i as u32, externs.len());
        externs.push(Extern {
            name: sym.name.clone(),
            weak: sym.weak,
            kind,
        });
    }
    kconfig.sort_by(|a, b| {
        b.2.cmp(&a.2)
            .then(a.1.cmp(&b.1))
            .then_with(|| externs[a.0].name.cmp(&externs[b.0].name))
    });
    let mut off = 0u64;
    for (e, size, align) in kconfig {
        let start = off.next_multiple_of(u64::from(align.max(1)));
        off = start + u64::from(size);
        if off > MAX_DATA_SIZE {
            return Err(ElfError::Section {
                section: KCONFIG_MAP.into(),
                kind: SectionErrorKind::DataTooLarge {
                    size: off,
                    limit: MAX_DATA_SIZE,
                },
            });
        }
        if let ExternKind::Kconfig { offset, .. } = &mut externs[e].kind {
            *offset = start as u32;
        }
    }
    Ok((externs, index))
}

enum Classified {
    Kconfig {
        size: u32,
        align: u32,
        ty: KconfigType,
    },
    KsymVar,
    KsymFunc,
    Unresolved,
}

/// The kind of the extern named `name`, from the DATASEC listing its BTF `VAR` or `FUNC`.
fn classify(btf: &Btf<'_>, name: &str) -> Result<Classified, ExternErrorKind> {
    let b = ExternErrorKind::Btf;
    let Some(id) = btf.var_or_func(name) else {
        return Ok(Classified::Unresolved);
    };
    let Some(section) = btf
        .datasecs()
        .find(|(_, vars)| vars.iter().any(|v| v.type_id == id))
        .map(|(name, _)| name)
    else {
        return Ok(Classified::Unresolved);
    };
    let t = btf.get(id).map_err(b)?;
    let is_func = matches!(t.kind, Kind::Func);
    match section.as_str() {
        ".kconfig" if is_func => Err(ExternErrorKind::KconfigFunc),
        ".kconfig" => {
            let ty_id = t.size_or_type;
            let ty = kconfig_type(btf, ty_id)
                .map_err(b)?
                .ok_or(ExternErrorKind::KconfigType)?;
            Ok(Classified::Kconfig {
                size: btf.size_of(ty_id).map_err(b)?,
                align: btf.align_of(ty_id).map_err(b)?,
                ty,
            })
        }
        ".ksyms" if is_func => Ok(Classified::KsymFunc),
        ".ksyms" => Ok(Classified::KsymVar),
        _ => Err(ExternErrorKind::Section(section)),
    }
}

/// libbpf's `find_kcfg_type`: the accepted C types of a `__kconfig` extern.
fn kconfig_type(btf: &Btf<'_>, id: u32) -> Result<Option<KconfigType>, BtfError> {
    let id = btf.skip_modifiers(id)?;
    let t = btf.get(id)?;
    Ok(match t.kind {
        Kind::Int { encoding } if encoding & INT_BOOL != 0 => {
            (t.size_or_type == 1).then_some(KconfigType::Bool)
        }
        Kind::Int { .. } if t.size_or_type == 1 => Some(KconfigType::Char),
        Kind::Int { encoding } => matches!(t.size_or_type, 2 | 4 | 8).then_some(KconfigType::Int {
            signed: encoding & INT_SIGNED != 0,
        }),
        Kind::Enum if btf.name(t.name_off)? == "libbpf_tristate" => Some(KconfigType::Tristate),
        Kind::Array { elem, nelems } if nelems > 0 => {
            (kconfig_type(btf, elem)? == Some(KconfigType::Char)).then_some(KconfigType::CharArray)
        }
        _ => None,
    })
}

/// Appends the `.kconfig` map when there are `__kconfig` externs: one read-only entry as
/// large as their layout, zero until the runtime writes the values
/// ([`Object::kconfig_value`]).
pub(crate) fn add_kconfig_map(externs: &[Extern], maps: &mut Vec<MapSpec>, index: &mut MapIndex) {
    let size = externs
        .iter()
        .filter_map(|e| match e.kind {
            ExternKind::Kconfig { offset, size, .. } => Some(offset.saturating_add(size)),
            _ => None,
        })
        .max();
    let Some(size) = size else {
        return;
    };
    index.kconfig = Some(maps.len());
    maps.push(MapSpec {
        flags: BPF_F_MMAPABLE | BPF_F_RDONLY_PROG,
        initial_data: Some(vec![0; size as usize]),
        read_only: true,
        ..MapSpec::new(KCONFIG_MAP, MapKind::Array.into(), 4, size, 1)
    });
}

/// A `__kconfig` value that does not suit its extern's type.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("kconfig extern {name:?}: value {value:?}: {reason}")]
pub struct KconfigError {
    /// The extern.
    pub name: String,
    /// The value given.
    pub value: String,
    /// Why it does not fit.
    pub reason: &'static str,
}

/// The `.kconfig` map's value, and the strong externs left without one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KconfigValue {
    /// The bytes of the map's single value.
    pub bytes: Vec<u8>,
    /// Indices in [`Object::externs`] of the strong `__kconfig` externs that got no value:
    /// the programs using them cannot run.
    pub unset: Vec<usize>,
}

impl Object {
    /// The value of the `.kconfig` map given `lookup`, which maps an extern's name to its
    /// value written as in a kernel `.config` (`y`, `n`, `m`, a number in C syntax, or a
    /// quoted string), following libbpf's rules: `LINUX_KERNEL_VERSION` defaults to
    /// [`DEFAULT_KERNEL_VERSION`], `LINUX_HAS_BPF_COOKIE` and `LINUX_HAS_SYSCALL_WRAPPER` to
    /// 0 (bpfx has neither); any other extern without a value is zero when weak and listed
    /// in [`KconfigValue::unset`] when strong. `None` when there are no `__kconfig` externs.
    pub fn kconfig_value(
        &self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<KconfigValue>, KconfigError> {
        let Some(map) = self.kconfig_map() else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; self.maps[map].value_size as usize];
        let mut unset = Vec::new();
        for (i, e) in self.externs.iter().enumerate() {
            let ExternKind::Kconfig { offset, size, ty } = e.kind else {
                continue;
            };
            let value = lookup(&e.name).or_else(|| match e.name.as_str() {
                "LINUX_KERNEL_VERSION" => Some(DEFAULT_KERNEL_VERSION.to_string()),
                "LINUX_HAS_BPF_COOKIE" | "LINUX_HAS_SYSCALL_WRAPPER" => Some("0".into()),
                _ => None,
            });
            let Some(value) = value else {
                if !e.weak {
                    unset.push(i);
                }
                continue;
            };
            let encoded = encode(ty, size, &value).map_err(|reason| KconfigError {
                name: e.name.clone(),
                value: value.clone(),
                reason,
            })?;
            let at = offset as usize;
            bytes[at..at + encoded.len()].copy_from_slice(&encoded);
        }
        Ok(Some(KconfigValue { bytes, unset }))
    }
}

/// Writes `value` as an extern of type `ty` and `size` bytes (libbpf's `set_kcfg_value_*`).
fn encode(ty: KconfigType, size: u32, value: &str) -> Result<Vec<u8>, &'static str> {
    let size = size as usize;
    match value.as_bytes().first() {
        Some(&c @ (b'y' | b'n' | b'm')) if value.len() == 1 => match ty {
            KconfigType::Bool if c == b'm' => Err("'m' implies a tristate or char type"),
            KconfigType::Bool => Ok(vec![u8::from(c == b'y')]),
            KconfigType::Tristate => {
                let v: u32 = match c {
                    b'y' => 1,
                    b'm' => 2,
                    _ => 0,
                };
                Ok(v.to_le_bytes()[..size.min(4)].to_vec())
            }
            KconfigType::Char => Ok(vec![c]),
            _ => Err("y, n or m implies a bool, tristate or char type"),
        },
        Some(b'"') => {
            if ty != KconfigType::CharArray {
                return Err("a string implies a char array type");
            }
            let inner = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .ok_or("a string must end with a quote")?;
            // Truncated to leave room for the NUL, as libbpf does.
            let mut out = vec![0u8; size];
            let n = inner.len().min(size.saturating_sub(1));
            out[..n].copy_from_slice(&inner.as_bytes()[..n]);
            Ok(out)
        }
        _ => {
            let v = parse_number(value).ok_or("not a number")?;
            match ty {
                KconfigType::Bool if v > 1 => Err("not a boolean (0 or 1)"),
                KconfigType::Bool | KconfigType::Char | KconfigType::Int { .. } => {
                    let signed = matches!(ty, KconfigType::Int { signed: true });
                    let bits = size * 8;
                    let fits = bits >= 64
                        || if signed {
                            v.wrapping_add(1 << (bits - 1)) < 1 << bits
                        } else {
                            v >> bits == 0
                        };
                    if !fits {
                        return Err("does not fit the type");
                    }
                    Ok(v.to_le_bytes()[..size.min(8)].to_vec())
                }
                _ => Err("a number implies an integer, char or bool type"),
            }
        }
    }
}

/// A number as `strtoull(s, _, 0)` reads it, whole: decimal, `0x` hex, `0` octal, with an
/// optional sign (a negative number wraps, as in C).
fn parse_number(s: &str) -> Option<u64> {
    let (neg, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        u64::from_str_radix(hex, 16).ok()?
    } else if digits.len() > 1 && digits.starts_with('0') {
        u64::from_str_radix(&digits[1..], 8).ok()?
    } else {
        digits.parse().ok()?
    };
    Some(if neg { v.wrapping_neg() } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_written_as_libbpf_writes_them() {
        assert_eq!(encode(KconfigType::Bool, 1, "y"), Ok(vec![1]));
        assert_eq!(encode(KconfigType::Bool, 1, "n"), Ok(vec![0]));
        assert!(encode(KconfigType::Bool, 1, "m").is_err());
        assert!(encode(KconfigType::Bool, 1, "2").is_err());
        assert_eq!(encode(KconfigType::Tristate, 4, "m"), Ok(vec![2, 0, 0, 0]));
        assert_eq!(encode(KconfigType::Char, 1, "m"), Ok(vec![b'm']));
        let int = KconfigType::Int { signed: false };
        assert_eq!(encode(int, 4, "0x100"), Ok(vec![0, 1, 0, 0]));
        assert_eq!(encode(int, 2, "010"), Ok(vec![8, 0]));
        assert_eq!(encode(int, 2, "65536"), Err("does not fit the type"));
        assert!(encode(int, 4, "y").is_err());
        assert!(encode(int, 4, "12z").is_err());
        let signed = KconfigType::Int { signed: true };
        assert_eq!(encode(signed, 2, "-1"), Ok(vec![0xff, 0xff]));
        assert!(encode(signed, 1 + 1, "-32769").is_err());
        assert_eq!(
            encode(KconfigType::CharArray, 4, "\"abcdef\""),
            Ok(b"abc\0".to_vec()),
            "truncated, NUL-terminated"
        );
        assert!(encode(KconfigType::CharArray, 4, "\"abc").is_err());
        assert!(encode(int, 4, "\"1\"").is_err());
    }

    #[test]
    fn kernel_version_packs_like_the_kernel_macro() {
        assert_eq!(kernel_version(6, 6, 0), 0x06_06_00);
        assert_eq!(kernel_version(5, 15, 300), 0x05_0f_ff, "sublevel saturates");
    }
}

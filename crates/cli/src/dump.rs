//! Map contents after a run, as text or JSON (`bpfx run --dump-maps`).
//!
//! Keys and values of 1, 2, 4 or 8 bytes print as little-endian unsigned integers (how the
//! programs of this size store counters and indices); any other size prints as hex bytes in
//! memory order. Ring buffers and perf event arrays print the records ready to read (reading
//! consumes them); program arrays print their slots. Per-CPU maps print a list of every CPU's
//! value, CPU 0 first. A map no program named is created for the dump (initial contents); one
//! bpfx cannot create prints why. A global data section (`.data`, `.rodata`, `.bss`, …) also
//! lists its variables by name, each value decoded through the object's BTF ([`decode`]).

use bpfx::elf::Layout;
use bpfx::{Map, MapKind, Object, PerfEvent};
use serde_json::{Value, json};
use std::fmt::Write;
use std::sync::Arc;

fn int(bytes: &[u8]) -> Option<u64> {
    matches!(bytes.len(), 1 | 2 | 4 | 8).then(|| {
        let mut b = [0u8; 8];
        b[..bytes.len()].copy_from_slice(bytes);
        u64::from_le_bytes(b)
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn json_bytes(bytes: &[u8]) -> Value {
    match int(bytes) {
        Some(v) => v.into(),
        None => hex(bytes).into(),
    }
}

fn text_bytes(bytes: &[u8]) -> String {
    match int(bytes) {
        Some(v) => v.to_string(),
        None => hex(bytes),
    }
}

/// A value as the host reads it, split per CPU for per-CPU maps (each CPU's value is
/// `value_size` bytes at a stride rounded up to 8).
fn per_cpu(map: &Map, v: &[u8]) -> Vec<Vec<u8>> {
    if !map.kind().per_cpu() {
        return vec![v.to_vec()];
    }
    let size = map.value_size() as usize;
    v.chunks(size.next_multiple_of(8))
        .map(|c| c[..size.min(c.len())].to_vec())
        .collect()
}

fn json_value(map: &Map, v: &[u8]) -> Value {
    let mut parts: Vec<Value> = per_cpu(map, v).iter().map(|p| json_bytes(p)).collect();
    if map.kind().per_cpu() {
        parts.into()
    } else {
        parts.pop().unwrap_or(Value::Null)
    }
}

fn text_value(map: &Map, v: &[u8]) -> String {
    let parts: Vec<String> = per_cpu(map, v).iter().map(|p| text_bytes(p)).collect();
    if map.kind().per_cpu() {
        format!("[{}]", parts.join(", "))
    } else {
        parts.concat()
    }
}

fn records(map: &Map) -> Vec<Vec<u8>> {
    map.drain_records().unwrap_or_default()
}

/// Each map of `obj` that bpfx can create, with its storage: a map no program named is
/// created now, as host access does ([`Object::map`]), and shows its initial contents. A map
/// it cannot create (or that does not fit the memory limit) comes with the reason instead.
fn each_map(obj: &Object) -> Vec<(String, Result<Arc<Map>, String>)> {
    obj.maps()
        .map(|m| {
            let created = obj.map(m.name()).map_err(|e| match e {
                bpfx::Error::MapSpec { reason, .. } => reason,
                e => e.to_string(),
            });
            (m.name().to_string(), created)
        })
        .collect()
}

fn perf_events(map: &Map) -> Vec<PerfEvent> {
    map.perf_drain().unwrap_or_default()
}

/// Every map of `obj` as a JSON list in index order, each an object with its `name` (the
/// shape of `info --json`'s `maps`).
pub(crate) fn maps_json(obj: &Object) -> Value {
    let mut out = Vec::new();
    for (name, map) in each_map(obj) {
        let map = match map {
            Ok(map) => map,
            Err(reason) => {
                out.push(json!({ "name": name, "unavailable": reason }));
                continue;
            }
        };
        let mut m = json!({
            "name": name,
            "kind": map.kind().name(),
            "key_size": map.key_size(),
            "value_size": map.value_size(),
            "max_entries": map.max_entries(),
        });
        match map.kind() {
            MapKind::RingBuf => {
                m["records"] = records(&map)
                    .iter()
                    .map(|r| hex(r))
                    .collect::<Vec<_>>()
                    .into();
            }
            MapKind::PerfEventArray => {
                m["records"] = perf_events(&map)
                    .iter()
                    .map(|e| match e {
                        PerfEvent::Sample { cpu, data } => json!({"cpu": cpu, "data": hex(data)}),
                        PerfEvent::Lost { cpu, count } => json!({"cpu": cpu, "lost": count}),
                    })
                    .collect::<Vec<_>>()
                    .into();
            }
            MapKind::ProgArray => {
                m["programs"] = map
                    .programs()
                    .into_iter()
                    .map(|(i, name)| json!({"index": i, "program": name}))
                    .collect::<Vec<_>>()
                    .into();
            }
            _ => {
                let layout = obj.map_layout(&name);
                let key_layout = layout.and_then(|l| l.key.as_ref());
                let value_layout = layout.and_then(|l| l.value.as_ref());
                m["entries"] = map
                    .iter()
                    .map(|(k, v)| {
                        let mut e = json!({"key": json_bytes(&k), "value": json_value(&map, &v)});
                        if let Some(l) = key_layout {
                            e["key_btf"] = decode(l, &k);
                        }
                        if let Some(l) = value_layout {
                            let mut parts: Vec<Value> =
                                per_cpu(&map, &v).iter().map(|p| decode(l, p)).collect();
                            e["value_btf"] = if map.kind().per_cpu() {
                                parts.into()
                            } else {
                                parts.pop().unwrap_or(Value::Null)
                            };
                        }
                        e
                    })
                    .collect::<Vec<_>>()
                    .into();
                if let Some(vars) = vars_json(obj, &name, &map) {
                    m["vars"] = vars;
                }
            }
        }
        out.push(m);
    }
    Value::Array(out)
}

/// Every map of `obj`, one header line per map and one line per entry.
pub(crate) fn maps_text(obj: &Object) -> String {
    let mut s = String::new();
    for (name, map) in each_map(obj) {
        let map = match map {
            Ok(map) => map,
            Err(reason) => {
                let _ = writeln!(s, "map {name}: unavailable: {reason}");
                continue;
            }
        };
        let _ = writeln!(
            s,
            "map {} ({}, key {} B, value {} B, max {}):",
            map.name(),
            map.kind(),
            map.key_size(),
            map.value_size(),
            map.max_entries()
        );
        match map.kind() {
            MapKind::RingBuf => {
                for r in records(&map) {
                    let _ = writeln!(s, "  record {}", hex(&r));
                }
            }
            MapKind::PerfEventArray => {
                for e in perf_events(&map) {
                    let _ = match e {
                        PerfEvent::Sample { cpu, data } => {
                            writeln!(s, "  cpu {cpu} record {}", hex(&data))
                        }
                        PerfEvent::Lost { cpu, count } => writeln!(s, "  cpu {cpu} lost {count}"),
                    };
                }
            }
            MapKind::ProgArray => {
                for (i, name) in map.programs() {
                    let _ = writeln!(s, "  {i} => {name}");
                }
            }
            _ => {
                for (k, v) in map.iter() {
                    let _ = writeln!(s, "  {} => {}", text_bytes(&k), text_value(&map, &v));
                }
                if let Some(Value::Array(vars)) = vars_json(obj, &name, &map) {
                    for v in vars {
                        let name = v["name"].as_str().unwrap_or("");
                        let _ = match &v["value"] {
                            Value::String(text) => writeln!(s, "  {name} = {text}"),
                            value => writeln!(s, "  {name} = {value}"),
                        };
                    }
                }
            }
        }
    }
    s
}

/// The variables of global data section `section` (the map `map`), in offset order, each
/// `{"name", "offset", "size", "hex", "value"}` with the value decoded through its BTF layout
/// (hex without BTF); `None` when the map is not a global data section with variables.
fn vars_json(obj: &Object, section: &str, map: &Map) -> Option<Value> {
    let vars: Vec<_> = obj.globals().filter(|g| g.section == section).collect();
    if vars.is_empty() {
        return None;
    }
    let (_, value) = map.iter().next()?;
    let list = vars
        .iter()
        .filter_map(|g| {
            let start = g.offset as usize;
            let bytes = value.get(start..start.checked_add(g.size as usize)?)?;
            let decoded = match g.layout {
                Some(layout) => decode(layout, bytes),
                None => hex(bytes).into(),
            };
            Some(json!({
                "name": g.name,
                "offset": g.offset,
                "size": g.size,
                "hex": hex(bytes),
                "value": decoded,
            }))
        })
        .collect::<Vec<_>>();
    Some(list.into())
}

/// The size in bytes of a value of `layout`.
fn layout_size(layout: &Layout) -> usize {
    match layout {
        Layout::Int { size, .. } | Layout::Struct { size, .. } | Layout::Bytes(size) => {
            *size as usize
        }
        Layout::Bool => 1,
        Layout::Array { elem, len } => layout_size(elem).saturating_mul(*len as usize),
    }
}

/// An integer of `bytes` (at most 8, little-endian), sign-extended when `signed`, as JSON:
/// a number up to 4 bytes, a decimal string for 8 (exact for readers whose numbers are
/// doubles).
fn int_json(bytes: &[u8], signed: bool) -> Value {
    let mut b = [0u8; 8];
    let n = bytes.len().min(8);
    b[..n].copy_from_slice(&bytes[..n]);
    let u = u64::from_le_bytes(b);
    let shift = 64 - 8 * n as u32;
    let i = if n == 0 {
        0
    } else {
        ((u << shift) as i64) >> shift
    };
    match (n, signed) {
        (8, false) => u.to_string().into(),
        (8, true) => i.to_string().into(),
        (_, false) => u.into(),
        (_, true) => i.into(),
    }
}

/// `bytes` read as `layout`: integers as [`int_json`] gives them, `_Bool` as `true`/`false`,
/// arrays as lists, structs as objects by member name (bitfields as numbers), anything else
/// as hex. Bytes missing at the end (a layout larger than the value) read as null.
pub(crate) fn decode(layout: &Layout, bytes: &[u8]) -> Value {
    let size = layout_size(layout);
    let Some(bytes) = bytes.get(..size) else {
        return Value::Null;
    };
    match layout {
        Layout::Int { signed, .. } => int_json(bytes, *signed),
        Layout::Bool => bytes.first().is_some_and(|b| *b != 0).into(),
        Layout::Bytes(_) => hex(bytes).into(),
        Layout::Array { elem, len } => {
            let step = layout_size(elem);
            (0..*len as usize)
                .map(|i| decode(elem, bytes.get(i * step..).unwrap_or(&[])))
                .collect::<Vec<_>>()
                .into()
        }
        Layout::Struct { fields, .. } => {
            let mut out = serde_json::Map::new();
            for (i, f) in fields.iter().enumerate() {
                let at = (f.bit_offset / 8) as usize;
                let rest = bytes.get(at..).unwrap_or(&[]);
                let value = if f.bits == 0 {
                    decode(&f.layout, rest)
                } else {
                    // A bitfield: its bits from the byte holding its first one.
                    let mut b = [0u8; 8];
                    let n = rest.len().min(8);
                    b[..n].copy_from_slice(&rest[..n]);
                    let shifted = u64::from_le_bytes(b) >> (f.bit_offset % 8);
                    let mask = if f.bits >= 64 {
                        u64::MAX
                    } else {
                        (1 << f.bits) - 1
                    };
                    (shifted & mask).into()
                };
                let name = if f.name.is_empty() {
                    format!("_{i}")
                } else {
                    f.name.clone()
                };
                out.insert(name, value);
            }
            Value::Object(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfx::elf::Field;

    #[test]
    fn values_decode_by_their_layout() {
        let u = |size| Layout::Int {
            size,
            signed: false,
        };
        let s = |size| Layout::Int { size, signed: true };
        assert_eq!(decode(&u(4), &[1, 2, 0, 0]), json!(0x201));
        assert_eq!(decode(&s(2), &[0xfe, 0xff]), json!(-2));
        assert_eq!(decode(&u(8), &[0xff; 8]), json!("18446744073709551615"));
        assert_eq!(decode(&s(8), &[0xff; 8]), json!("-1"));
        assert_eq!(decode(&Layout::Bool, &[1]), json!(true));
        assert_eq!(decode(&Layout::Bytes(3), &[1, 2, 3]), json!("010203"));
        let arr = Layout::Array {
            elem: Box::new(u(2)),
            len: 3,
        };
        assert_eq!(decode(&arr, &[1, 0, 2, 0, 3, 0]), json!([1, 2, 3]));
        let field = |name: &str, bit_offset, bits, layout| Field {
            name: name.to_string(),
            bit_offset,
            bits,
            layout,
        };
        let st = Layout::Struct {
            size: 16,
            fields: vec![
                field("calls", 0, 0, u(4)),
                field("flag", 32, 3, u(4)),
                field("", 35, 5, u(4)),
                field("sum", 64, 0, u(8)),
            ],
        };
        let mut bytes = [0u8; 16];
        bytes[0] = 7;
        bytes[4] = 0b1010_1101;
        bytes[8] = 9;
        assert_eq!(
            decode(&st, &bytes),
            json!({"calls": 7, "flag": 0b101, "_2": 0b10101, "sum": "9"})
        );
        // Too few bytes for the layout: null, not a panic.
        assert_eq!(decode(&u(8), &[1, 2]), Value::Null);
    }
}

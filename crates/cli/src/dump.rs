//! Map contents after a run, as text or JSON (`bpfx run --dump-maps`).
//!
//! Keys and values of 1, 2, 4 or 8 bytes print as little-endian unsigned integers (how the
//! programs of this size store counters and indices); any other size prints as hex bytes in
//! memory order. Ring buffers and perf event arrays print the records ready to read (reading
//! consumes them); program arrays print their slots. Per-CPU maps print a list of every CPU's
//! value, CPU 0 first. A map no program named is created for the dump (initial contents); one
//! bpfx cannot create prints why.

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
                m["entries"] = map
                    .iter()
                    .map(|(k, v)| json!({"key": json_bytes(&k), "value": json_value(&map, &v)}))
                    .collect::<Vec<_>>()
                    .into();
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
            }
        }
    }
    s
}

//! `--maps FILE` (`run`, `bench`, `replay`): fill an object's maps before the first run from a
//! JSON file, and `--hist MAP`: print an array of log2 buckets after it as bpftrace's `hist()`
//! does. The format is in docs/cli.md, "Initial map contents":
//!
//! ```text
//! { "MAP": [ {"key": K, "value": V}, ... ], ... }
//! ```
//!
//! A key or value is a number (stored little-endian in the map's key or value size), a string
//! of hex bytes in memory order (`"0a000001"`, `0x` optional), or a list of bytes
//! (`[10, 0, 0, 1]`): the shapes `--dump-maps --json` prints, so a dump's `entries` read back.
//! An LPM trie's key may also be `{"prefixlen": 24, "data": "10.0.0.0"}` (`data`: an IPv4 or
//! IPv6 address, or bytes). A per-CPU map's value is one value for every CPU, or a list of one
//! value per CPU. A program array's value is a program's name, a map of maps' the name of
//! another map of the object.

use crate::error::CliError;
use bpfx::{Map, MapKind, Object, UpdateFlag};
use serde_json::Value;
use std::path::Path;

/// Why one part of the file cannot be applied: the map and the entry (from 0) at fault.
struct Fault {
    map: Option<String>,
    entry: Option<usize>,
    reason: String,
}

impl Fault {
    fn file(reason: impl Into<String>) -> Fault {
        Fault {
            map: None,
            entry: None,
            reason: reason.into(),
        }
    }
}

/// Fills the maps of `obj` from the JSON file at `path`. `program` prepares a program of the
/// object by name, for a program array's slots. Returns the number of entries stored.
pub(crate) fn apply(
    path: &Path,
    obj: &Object,
    program: &mut dyn FnMut(&str) -> Result<bpfx::Program, CliError>,
) -> Result<usize, CliError> {
    let text = crate::load::read(path)?;
    let to_err = |f: Fault| CliError::MapsInit {
        path: path.to_path_buf(),
        map: f.map,
        entry: f.entry,
        reason: f.reason,
    };
    let doc: Value =
        serde_json::from_slice(&text).map_err(|e| to_err(Fault::file(format!("not JSON: {e}"))))?;
    let Value::Object(maps) = doc else {
        return Err(to_err(Fault::file(
            "expected an object mapping map names to lists of {\"key\", \"value\"} entries",
        )));
    };
    let mut stored = 0;
    for (name, entries) in &maps {
        let at_map = |reason: String| Fault {
            map: Some(name.clone()),
            entry: None,
            reason,
        };
        if !obj.maps().any(|m| m.name() == name) {
            let names: Vec<&str> = obj.maps().map(|m| m.name()).collect();
            return Err(to_err(at_map(format!(
                "the object has no such map (its maps: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ))));
        }
        let map = obj
            .map(name)
            .map_err(|e| to_err(at_map(format!("cannot be created: {e}"))))?;
        let Value::Array(entries) = entries else {
            return Err(to_err(at_map(
                "expected a list of {\"key\", \"value\"} entries".to_string(),
            )));
        };
        for (i, entry) in entries.iter().enumerate() {
            fill(obj, &map, entry, program).map_err(|reason| {
                to_err(Fault {
                    map: Some(name.clone()),
                    entry: Some(i),
                    reason,
                })
            })?;
            stored += 1;
        }
    }
    Ok(stored)
}

/// Stores one `{"key", "value"}` entry.
fn fill(
    obj: &Object,
    map: &Map,
    entry: &Value,
    program: &mut dyn FnMut(&str) -> Result<bpfx::Program, CliError>,
) -> Result<(), String> {
    let Value::Object(fields) = entry else {
        return Err("expected an object {\"key\": ..., \"value\": ...}".to_string());
    };
    // A dump's `key_btf` and `value_btf` are the same key and value decoded: ignored, so a
    // dump's entries read back as they are.
    let known = ["key", "value", "key_btf", "value_btf"];
    if let Some(extra) = fields.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(format!(
            "unknown field `{extra}` (an entry has `key` and `value`)"
        ));
    }
    let key_size = map.key_size() as usize;
    let key = match (fields.get("key"), key_size) {
        (Some(k), _) if map.kind() == MapKind::LpmTrie => lpm_key(k, key_size)?,
        (Some(k), _) => bytes(k, key_size).map_err(|e| format!("key: {e}"))?,
        // Queues, stacks and bloom filters have no keys.
        (None, 0) => Vec::new(),
        (None, _) => return Err("no `key`".to_string()),
    };
    let value = fields.get("value").ok_or("no `value`")?;
    let failed = |e: String| format!("cannot store it: {e}");
    match map.kind() {
        MapKind::RingBuf | MapKind::PerfEventArray => Err(format!(
            "a {} map holds records, not entries: it cannot be filled",
            map.kind()
        )),
        MapKind::ProgArray => {
            let name = value
                .as_str()
                .ok_or("value: expected the name of a program of the object")?;
            let index = u32::from_le_bytes(
                key.as_slice()
                    .try_into()
                    .map_err(|_| "key: a program array's keys are 4 bytes".to_string())?,
            );
            let prog = program(name).map_err(|e| format!("value: program `{name}`: {e}"))?;
            map.set_program(index, &prog)
                .map_err(|e| failed(e.to_string()))
        }
        MapKind::ArrayOfMaps | MapKind::HashOfMaps => {
            let name = value
                .as_str()
                .ok_or("value: expected the name of another map of the object")?;
            let inner = obj
                .map(name)
                .map_err(|e| format!("value: inner map `{name}`: {e}"))?;
            map.set_inner(&key, &inner)
                .map_err(|e| failed(format!("inner map `{name}`: {e}")))
        }
        kind => {
            let v = if kind.per_cpu() {
                per_cpu_value(map, value)?
            } else {
                bytes(value, map.value_size() as usize).map_err(|e| format!("value: {e}"))?
            };
            map.update(&key, &v, UpdateFlag::Any)
                .map_err(|e| failed(e.to_string()))
        }
    }
}

/// A per-CPU value as the host writes it: each CPU's value at a stride of the value size
/// rounded up to 8; one value for every CPU, or a list with one per CPU.
fn per_cpu_value(map: &Map, value: &Value) -> Result<Vec<u8>, String> {
    let size = map.value_size() as usize;
    let stride = size.next_multiple_of(8);
    let cpus = map.host_value_size() / stride.max(1);
    let each: Vec<Vec<u8>> = match value {
        Value::Array(list) => {
            if list.len() != cpus {
                return Err(format!(
                    "value: a list of {} per-CPU values, the map has {cpus} CPUs (give one \
                     value for all of them, or one per CPU)",
                    list.len()
                ));
            }
            list.iter()
                .enumerate()
                .map(|(cpu, v)| bytes(v, size).map_err(|e| format!("value of CPU {cpu}: {e}")))
                .collect::<Result<_, _>>()?
        }
        v => vec![bytes(v, size).map_err(|e| format!("value: {e}"))?; cpus],
    };
    let mut out = vec![0u8; stride * cpus];
    for (cpu, v) in each.iter().enumerate() {
        out[cpu * stride..cpu * stride + size].copy_from_slice(v);
    }
    Ok(out)
}

/// An LPM trie's key: `{"prefixlen": N, "data": ADDRESS or bytes}`, or the raw key bytes
/// (the prefix length as a little-endian u32, then the data).
fn lpm_key(k: &Value, key_size: usize) -> Result<Vec<u8>, String> {
    let Value::Object(fields) = k else {
        return bytes(k, key_size).map_err(|e| format!("key: {e}"));
    };
    if let Some(extra) = fields.keys().find(|f| *f != "prefixlen" && *f != "data") {
        return Err(format!(
            "key: unknown field `{extra}` (an LPM key has `prefixlen` and `data`)"
        ));
    }
    let data_size = key_size.saturating_sub(4);
    let prefixlen = fields
        .get("prefixlen")
        .and_then(Value::as_u64)
        .ok_or("key: `prefixlen` must be a non-negative number")?;
    if prefixlen > 8 * data_size as u64 {
        return Err(format!(
            "key: prefixlen {prefixlen} is longer than the key's {} bits of data",
            8 * data_size
        ));
    }
    let data = fields.get("data").ok_or("key: no `data`")?;
    let data = match data.as_str().map(str::parse::<std::net::IpAddr>) {
        Some(Ok(addr)) => {
            let octets = match addr {
                std::net::IpAddr::V4(a) => a.octets().to_vec(),
                std::net::IpAddr::V6(a) => a.octets().to_vec(),
            };
            if octets.len() != data_size {
                return Err(format!(
                    "key: data: address {addr} is {} bytes, the key's data is {data_size}",
                    octets.len()
                ));
            }
            octets
        }
        _ => bytes(data, data_size).map_err(|e| format!("key: data: {e}"))?,
    };
    let mut key = (prefixlen as u32).to_le_bytes().to_vec();
    key.extend_from_slice(&data);
    Ok(key)
}

/// `size` bytes from a number (little-endian), a hex string or a list of bytes.
fn bytes(v: &Value, size: usize) -> Result<Vec<u8>, String> {
    let out = match v {
        Value::Number(n) => {
            let (le, fits) = if let Some(u) = n.as_u64() {
                let bits = 64 - u.leading_zeros() as usize;
                (u.to_le_bytes(), bits <= 8 * size)
            } else if let Some(i) = n.as_i64() {
                // Negative: two's complement, within the signed range of the size.
                let fits = size >= 8 || (i >= -(1i64 << (8 * size - 1)));
                (i.to_le_bytes(), size > 0 && fits)
            } else {
                return Err(format!("{n} is not an integer"));
            };
            if !fits {
                return Err(format!("{n} does not fit in {size} bytes"));
            }
            let fill = if n.as_i64().is_some_and(|i| i < 0) {
                0xff
            } else {
                0
            };
            let mut b = vec![fill; size];
            let k = size.min(8);
            b[..k].copy_from_slice(&le[..k]);
            b
        }
        Value::String(s) => {
            let h = s
                .strip_prefix("0x")
                .or_else(|| s.strip_prefix("0X"))
                .unwrap_or(s);
            if h.len() % 2 != 0 || !h.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(format!(
                    "\"{s}\" is not hex bytes (two hex digits a byte, in memory order)"
                ));
            }
            (0..h.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&h[i..i + 2], 16).map_err(|e| e.to_string()))
                .collect::<Result<Vec<u8>, String>>()?
        }
        Value::Array(list) => list
            .iter()
            .map(|b| {
                b.as_u64()
                    .and_then(|b| u8::try_from(b).ok())
                    .ok_or_else(|| format!("{b} is not a byte (0 to 255)"))
            })
            .collect::<Result<Vec<u8>, String>>()?,
        other => {
            return Err(format!(
                "expected a number, a string of hex bytes or a list of bytes, got {other}"
            ));
        }
    };
    if out.len() != size {
        return Err(format!("{} bytes, expected {size}", out.len()));
    }
    Ok(out)
}

/// The counts of a log2 histogram: `map`'s entry k (summed over CPUs for a per-CPU array)
/// counts the values in [2^k, 2^(k+1)), entry 0 those in [0, 2), as the slot `log2(v)` gives.
pub(crate) fn hist_counts(obj: &Object, name: &str) -> Result<Vec<u64>, CliError> {
    let usage = |why: String| CliError::Usage(format!("--hist {name}: {why}"));
    if !obj.maps().any(|m| m.name() == name) {
        let names: Vec<&str> = obj.maps().map(|m| m.name()).collect();
        return Err(usage(format!(
            "the object has no such map (its maps: {})",
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    }
    let map = obj.map(name).map_err(|e| usage(e.to_string()))?;
    let size = map.value_size() as usize;
    if !matches!(map.kind(), MapKind::Array | MapKind::PerCpuArray) || !matches!(size, 4 | 8) {
        return Err(usage(format!(
            "a histogram is an array or per-CPU array of 4- or 8-byte counters; `{name}` is a \
             {} map of {size}-byte values",
            map.kind()
        )));
    }
    let stride = if map.kind().per_cpu() {
        size.next_multiple_of(8)
    } else {
        size
    };
    let mut counts = Vec::new();
    for k in 0..map.max_entries() {
        let v = map
            .lookup(&k.to_le_bytes())
            .map_err(|e| usage(e.to_string()))?
            .unwrap_or_default();
        let mut sum = 0u64;
        for cpu in v.chunks(stride) {
            let mut b = [0u8; 8];
            b[..size].copy_from_slice(&cpu[..size]);
            sum = sum.wrapping_add(u64::from_le_bytes(b));
        }
        counts.push(sum);
    }
    if let Some(k) = counts.iter().skip(64).position(|&c| c != 0) {
        return Err(usage(format!(
            "entry {} counts values of 2^{} and more, past 64-bit values: not a log2 histogram",
            k + 64,
            k + 64
        )));
    }
    counts.truncate(64);
    Ok(counts)
}

/// `2^power` as bpftrace labels it: `512`, `1K`, `16M`, `8E`.
fn power_label(power: u32) -> String {
    const SUFFIX: [&str; 7] = ["", "K", "M", "G", "T", "P", "E"];
    let unit = (power / 10).min(6);
    format!("{}{}", 1u128 << (power - 10 * unit), SUFFIX[unit as usize])
}

/// The bucket of entry `k`: its lowest value and the bound above it (2^64 for the last).
fn bucket(k: usize) -> (u64, u128) {
    if k == 0 {
        (0, 2)
    } else {
        (1u64 << k, 1u128 << (k + 1))
    }
}

/// The histogram as bpftrace's `hist()` prints it: `@name:`, one line per bucket from the
/// first non-empty to the last (`[lo, hi)`, the count, a bar of up to 52 `@` scaled to the
/// largest count), and an empty line.
pub(crate) fn hist_text(name: &str, counts: &[u64]) -> String {
    let mut s = format!("@{name}:\n");
    let first = counts.iter().position(|&c| c != 0);
    let last = counts.iter().rposition(|&c| c != 0);
    if let (Some(first), Some(last)) = (first, last) {
        let max = counts.iter().copied().max().unwrap_or(1).max(1);
        for (k, &count) in counts.iter().enumerate().take(last + 1).skip(first) {
            let label = if k == 0 {
                "[0, 2)".to_string()
            } else {
                format!("[{}, {})", power_label(k as u32), power_label(k as u32 + 1))
            };
            let bar = "@".repeat((u128::from(count) * 52 / u128::from(max)) as usize);
            s.push_str(&format!("{label:<16}{count:>8} |{bar:<52}|\n"));
        }
    }
    s.push('\n');
    s
}

/// The histogram as JSON: the non-empty range of buckets, each `{"low", "high", "count"}`
/// (`high` excluded; 2^64 for the last bucket is given as a string).
pub(crate) fn hist_json(counts: &[u64]) -> Value {
    let first = counts.iter().position(|&c| c != 0).unwrap_or(counts.len());
    let last = counts.iter().rposition(|&c| c != 0).map_or(0, |l| l + 1);
    (first..last.max(first))
        .map(|k| {
            let (low, high) = bucket(k);
            let high: Value =
                u64::try_from(high).map_or_else(|_| high.to_string().into(), Value::from);
            serde_json::json!({ "low": low, "high": high, "count": counts[k] })
        })
        .collect::<Vec<_>>()
        .into()
}

/// Every `--hist` map, as text (after the run's own output) or JSON (`{"MAP": [...]}`).
pub(crate) fn hists(
    obj: &Object,
    names: &[String],
) -> Result<(String, serde_json::Map<String, Value>), CliError> {
    let mut text = String::new();
    let mut json = serde_json::Map::new();
    for name in names {
        let counts = hist_counts(obj, name)?;
        text.push_str(&hist_text(name, &counts));
        json.insert(name.clone(), hist_json(&counts));
    }
    Ok((text, json))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bytes_from_numbers_hex_and_lists() {
        assert_eq!(bytes(&json!(0x0102), 4).unwrap(), [2, 1, 0, 0]);
        assert_eq!(bytes(&json!(-1), 2).unwrap(), [0xff, 0xff]);
        assert_eq!(
            bytes(&json!(7), 10).unwrap(),
            [7, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes(&json!("0x0a000001"), 4).unwrap(), [10, 0, 0, 1]);
        assert_eq!(bytes(&json!([1, 2]), 2).unwrap(), [1, 2]);
        assert!(
            bytes(&json!(256), 1)
                .unwrap_err()
                .contains("does not fit in 1 bytes")
        );
        assert!(bytes(&json!(-129), 1).is_err());
        assert!(
            bytes(&json!("abc"), 2)
                .unwrap_err()
                .contains("not hex bytes")
        );
        assert!(
            bytes(&json!([1, 300]), 2)
                .unwrap_err()
                .contains("300 is not a byte")
        );
        assert!(
            bytes(&json!("0102"), 4)
                .unwrap_err()
                .contains("2 bytes, expected 4")
        );
        assert!(
            bytes(&json!(1.5), 4)
                .unwrap_err()
                .contains("not an integer")
        );
    }

    #[test]
    fn lpm_keys_from_addresses_and_bytes() {
        let k = lpm_key(&json!({"prefixlen": 24, "data": "10.1.2.0"}), 8).unwrap();
        assert_eq!(k, [24, 0, 0, 0, 10, 1, 2, 0]);
        let k = lpm_key(&json!({"prefixlen": 8, "data": [192, 0, 0, 0]}), 8).unwrap();
        assert_eq!(k, [8, 0, 0, 0, 192, 0, 0, 0]);
        assert!(lpm_key(&json!({"prefixlen": 33, "data": "10.0.0.0"}), 8).is_err());
        assert!(
            lpm_key(&json!({"prefixlen": 16, "data": "::1"}), 8)
                .unwrap_err()
                .contains("16 bytes")
        );
        assert_eq!(lpm_key(&json!("1800000001020300"), 8).unwrap()[0], 0x18);
    }

    #[test]
    fn power_labels_as_bpftrace() {
        assert_eq!(power_label(1), "2");
        assert_eq!(power_label(9), "512");
        assert_eq!(power_label(10), "1K");
        assert_eq!(power_label(21), "2M");
        assert_eq!(power_label(64), "16E");
    }
}

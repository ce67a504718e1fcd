//! `--fib PATH`: the forwarding table `bpf_fib_lookup` asks, from a JSON file (docs/cli.md,
//! "Forwarding table"): an array of entries, each a `prefix` (`"10.1.0.0/16"`, `"2001:db8::/32"`)
//! with either a route (`ifindex`, `smac`, optional `dmac`, `mtu`, `gateway`, `metric`, `src`)
//! or `"reject"` and the reason (`blackhole`, `unreachable`, `prohibit`, `not-forwarded`,
//! `forwarding-disabled`, `unsupported-lwt`, `no-device`).

use crate::error::CliError;
use bpfx::{FibFailure, FibRoute, FibTable};
use serde_json::Value;
use std::net::IpAddr;
use std::path::Path;

/// The table in the file at `path`.
pub(crate) fn load(path: &Path) -> Result<FibTable, CliError> {
    let fail = |reason: String| CliError::Fib {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| fail(format!("not JSON: {e}")))?;
    let entries = doc
        .as_array()
        .ok_or_else(|| fail("expected an array of routes".into()))?;
    let mut table = FibTable::new();
    for (i, e) in entries.iter().enumerate() {
        table = entry(table, e).map_err(|r| fail(format!("entry {i}: {r}")))?;
    }
    Ok(table)
}

fn entry(table: FibTable, e: &Value) -> Result<FibTable, String> {
    let obj = e.as_object().ok_or("expected an object")?;
    for key in obj.keys() {
        if ![
            "prefix", "reject", "ifindex", "smac", "dmac", "mtu", "gateway", "metric", "src",
        ]
        .contains(&key.as_str())
        {
            return Err(format!("unknown field `{key}`"));
        }
    }
    let prefix = obj
        .get("prefix")
        .and_then(Value::as_str)
        .ok_or("`prefix` (a string, ADDRESS/LENGTH) is missing")?;
    let (addr, len) = prefix
        .split_once('/')
        .ok_or_else(|| format!("prefix `{prefix}`: expected ADDRESS/LENGTH"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("prefix `{prefix}`: not an IP address"))?;
    let width = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = len
        .parse()
        .ok()
        .filter(|l| *l <= width)
        .ok_or_else(|| format!("prefix `{prefix}`: the length must be 0 to {width}"))?;
    if let Some(why) = obj.get("reject") {
        let why = match why.as_str() {
            Some("blackhole") => FibFailure::Blackhole,
            Some("unreachable") => FibFailure::Unreachable,
            Some("prohibit") => FibFailure::Prohibit,
            Some("not-forwarded") => FibFailure::NotForwarded,
            Some("forwarding-disabled") => FibFailure::ForwardingDisabled,
            Some("unsupported-lwt") => FibFailure::UnsupportedLwt,
            Some("no-device") => FibFailure::NoDevice,
            _ => return Err(format!("unknown reject reason {why}")),
        };
        if obj.len() != 2 {
            return Err("a rejecting entry has `prefix` and `reject` only".into());
        }
        return Ok(table.reject(addr, len, why));
    }
    let num = |key: &str, max: u64| -> Result<Option<u64>, String> {
        match obj.get(key) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .filter(|n| *n <= max)
                .map(Some)
                .ok_or_else(|| format!("`{key}` must be a number up to {max}")),
        }
    };
    let mac = |key: &str| -> Result<Option<[u8; 6]>, String> {
        let Some(v) = obj.get(key) else {
            return Ok(None);
        };
        let bad = || format!("`{key}` must be a MAC address (\"02:00:00:00:00:01\")");
        let s = v.as_str().ok_or_else(bad)?;
        let bytes: Vec<u8> = s
            .split(':')
            .map(|b| u8::from_str_radix(b, 16).ok().filter(|_| b.len() == 2))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        bytes.try_into().map(Some).map_err(|_| bad())
    };
    let ip = |key: &str| -> Result<Option<IpAddr>, String> {
        let Some(v) = obj.get(key) else {
            return Ok(None);
        };
        let a: IpAddr = v
            .as_str()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("`{key}` must be an IP address"))?;
        if a.is_ipv4() != addr.is_ipv4() {
            return Err(format!("`{key}` must be of the prefix's family"));
        }
        Ok(Some(a))
    };
    let ifindex = num("ifindex", u64::from(u32::MAX))?.ok_or("`ifindex` is missing")?;
    let route = FibRoute {
        ifindex: ifindex as u32,
        smac: mac("smac")?.ok_or("`smac` is missing")?,
        dmac: mac("dmac")?,
        mtu: num("mtu", u64::from(u16::MAX))?.unwrap_or(1500) as u16,
        gateway: ip("gateway")?,
        metric: num("metric", u64::from(u32::MAX))?.unwrap_or(0) as u32,
        src: ip("src")?,
    };
    Ok(table.route(addr, len, route))
}

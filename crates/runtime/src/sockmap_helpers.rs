//! The helpers that put a socket into a socket map from a sock_ops program (the service-mesh
//! pattern's first half: each local connection, once established, goes into a socket hash
//! keyed by its 4-tuple, where an sk_msg or sk_skb program finds it):
//!
//! - `sock_map_update(skops, map, &key, flags)` (53): the socket at index `key` (a `u32`) of a
//!   socket map;
//! - `sock_hash_update(skops, map, &key, flags)` (70): the socket under `key` in a socket hash.
//!
//! As the kernel's: only at the events where the socket is established or listening
//! (`BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB`, `PASSIVE_ESTABLISHED_CB`, `TCP_LISTEN_CB`), else
//! `-EOPNOTSUPP`; flags above `BPF_EXIST` `-EINVAL`; then the map's update rules and errnos
//! (an index past a socket map's end `-E2BIG`, `BPF_NOEXIST` on an entry `-EEXIST`,
//! `BPF_EXIST` on none `-ENOENT`, a full socket hash `-E2BIG`). bpfx has no sockets: the entry
//! records the run's socket by its cookie ([`crate::SockIds::cookie`], in the map's value size),
//! what the kernel reads back for it.

use crate::helpers::{Cx, map_by_handle, run_state_ref};
use crate::map::{MapKind, UpdateFlag};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_sock_map_update`.
pub(crate) const SOCK_MAP_UPDATE: u32 = 53;
/// `bpf_sock_hash_update`.
pub(crate) const SOCK_HASH_UPDATE: u32 = 70;

/// `BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB`, `BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB`,
/// `BPF_SOCK_OPS_TCP_LISTEN_CB`: the events at which a socket may join a socket map.
const OPS_OKAY: [u32; 3] = [4, 5, 11];

const EINVAL: u64 = (-22i64) as u64;
const EOPNOTSUPP: u64 = (-95i64) as u64;

/// `sock_map_update` (`hash` false) and `sock_hash_update` (`hash` true).
pub(crate) fn sock_update(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
    hash: bool,
) -> Result<u64, HelperError> {
    let name = if hash {
        "sock_hash_update"
    } else {
        "sock_map_update"
    };
    let map = map_by_handle(cx, mem, a[1])?;
    let want = if hash {
        MapKind::SockHash
    } else {
        MapKind::SockMap
    };
    if map.kind() != want {
        return Err(HelperError(format!(
            "{name} on {} map `{}`",
            map.kind(),
            map.name()
        )));
    }
    let key = mem
        .read(a[2], map.key_size() as usize)
        .ok_or_else(|| HelperError(format!("{name}: cannot read the key at {:#x}", a[2])))?;
    // `bpf_sock_ops.op`, the context's first word.
    let op = mem
        .load(a[0], 4)
        .ok_or_else(|| HelperError(format!("{name}: cannot read the context's op")))?;
    if !OPS_OKAY.contains(&(op as u32)) {
        return Ok(EOPNOTSUPP);
    }
    let Some(flag) = UpdateFlag::from_raw(a[3]) else {
        return Ok(EINVAL);
    };
    let cookie = run_state_ref(mem)?.sock.cookie.to_le_bytes();
    let value = &cookie[..map.value_size() as usize];
    Ok(match map.update(&key, value, flag) {
        Ok(()) => 0,
        Err(e) => e.ret(),
    })
}

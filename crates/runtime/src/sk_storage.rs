//! The socket-local storage helpers, on the sockets of the [`crate::Vm`]'s
//! [`crate::SocketTable`] (the storage itself: [`crate::maps`]' `sk_storage.rs`):
//!
//! - `sk_storage_get(map, sk, value, flags)` (107): the address of `sk`'s value in `map`;
//!   when it has none and `flags` is `BPF_SK_STORAGE_GET_F_CREATE`, a new one holding the
//!   value-size bytes at `value` (zeros when `value` is NULL). NULL when `sk` is not a full
//!   socket (a time-wait or request socket), for any other flag, when the socket has no
//!   value and `flags` is 0, or when the map holds values for as many sockets as it can
//!   ([`crate::SK_STORAGE_SOCKETS`]).
//! - `sk_storage_delete(map, sk)` (108): drops `sk`'s value: 0, `-ENOENT` when it had none,
//!   `-EINVAL` when `sk` is not a full socket.
//!
//! The verifier gives `sk_storage_get`'s result as a value of the map (or NULL), takes only a
//! socket-storage map in r1 (and refuses such a map to every other helper), and in r2 any
//! socket pointer checked not NULL (the kernel's `ARG_PTR_TO_BTF_ID_SOCK_COMMON`: `skb->sk`
//! needs no `sk_fullsock` first).

use crate::helpers::{Cx, map_by_handle};
use crate::sock_table::{SocketId, full_socket_at};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_sk_storage_get`'s id.
pub(crate) const SK_STORAGE_GET: u32 = 107;
/// `bpf_sk_storage_delete`'s id.
pub(crate) const SK_STORAGE_DELETE: u32 = 108;
/// `BPF_SK_STORAGE_GET_F_CREATE`: create the socket's value when it has none.
pub const BPF_SK_STORAGE_GET_F_CREATE: u64 = 1;

const EINVAL: u64 = (-22i64) as u64;
const ENOENT: u64 = (-2i64) as u64;

impl SocketId {
    /// The socket's key in a socket-storage map, as the host reads, updates and deletes its
    /// value there ([`crate::Map::lookup`]): its id as a little-endian `u32`, where the
    /// kernel takes the socket's file descriptor.
    pub fn storage_key(self) -> [u8; 4] {
        (self.0 as u32).to_le_bytes()
    }
}

/// The socket-storage map a handle names, and the full socket (its id) at `sk`, if it is one.
fn args<'a>(
    cx: &'a Cx,
    mem: &GuestMemory<'_>,
    a: [u64; 5],
    name: &str,
) -> Result<(crate::helpers::Held<'a>, Option<SocketId>), HelperError> {
    let map = map_by_handle(cx, mem, a[0])?;
    if map.ext().and_then(|e| e.as_sk_storage()).is_none() {
        return Err(HelperError(format!(
            "{name} on {} map `{}`",
            map.kind(),
            map.name()
        )));
    }
    let sk = full_socket_at(cx, a[1], name)?;
    Ok((map, sk))
}

/// `sk_storage_get(map, sk, value, flags)`.
pub(crate) fn sk_storage_get(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (map, sk) = args(cx, mem, a, "sk_storage_get")?;
    let (Some(sk), Some(st)) = (sk, map.ext().and_then(|e| e.as_sk_storage())) else {
        return Ok(0);
    };
    let flags = a[3];
    if flags > BPF_SK_STORAGE_GET_F_CREATE {
        return Ok(0);
    }
    let key = sk.0 as u32;
    if flags == 0 {
        return Ok(st.get(key, None).unwrap_or(0));
    }
    // The initial value is read only when the socket has none yet (as the kernel does).
    if let Some(addr) = st.get(key, None) {
        return Ok(addr);
    }
    let init = match a[2] {
        0 => None,
        at => Some(mem.read(at, map.value_size() as usize).ok_or_else(|| {
            HelperError(format!(
                "sk_storage_get: cannot read the {}-byte initial value at {at:#x}",
                map.value_size()
            ))
        })?),
    };
    Ok(st.get(key, Some(init.as_deref())).unwrap_or(0))
}

/// `sk_storage_delete(map, sk)`.
pub(crate) fn sk_storage_delete(
    cx: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let (map, sk) = args(cx, mem, a, "sk_storage_delete")?;
    let (Some(sk), Some(st)) = (sk, map.ext().and_then(|e| e.as_sk_storage())) else {
        return Ok(EINVAL);
    };
    Ok(if st.remove(sk.0 as u32) { 0 } else { ENOENT })
}

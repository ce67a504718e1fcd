//! The sk_msg helpers, with the kernel's semantics and errnos (`/usr/include/linux/bpf.h`;
//! the bookkeeping of `net/core/filter.c`, whose scatterlist bpfx keeps as element lengths over
//! one buffer, [`crate::SkMsg`]):
//!
//! - `msg_redirect_map(msg, map, key, flags)` (60) and `msg_redirect_hash(msg, map, &key,
//!   flags)` (71): `SK_PASS` and the socket recorded as the run's redirect target when the
//!   socket map or hash holds one at the key and the flags are at most `BPF_F_INGRESS`, else
//!   `SK_DROP`, as `sk_redirect_map`/`sk_redirect_hash` for sk_skb.
//! - `msg_apply_bytes(msg, bytes)` (61) and `msg_cork_bytes(msg, bytes)` (62): record the
//!   number ([`crate::SkMsgOutcome::apply_bytes`], [`crate::SkMsgOutcome::cork_bytes`]) and
//!   return 0.
//! - `msg_pull_data(msg, start, end, flags)` (63): the window `data`..`data_end` becomes bytes
//!   `start`..`end` of the message, the elements that range spans joined into one. Flags, `end
//!   <= start`, `start` at or past the message's end or `end` past it: `-EINVAL`.
//! - `msg_push_data(msg, start, len, flags)` (90): inserts `len` bytes at `start` (at most the
//!   message's length: `-EINVAL` past it), zeroed (the kernel's are a fresh page's, not
//!   cleared), as an element of their own: before the element `start` begins, after the last
//!   when `start` is the end, else splitting the element `start` falls in. `len` 0: nothing,
//!   0 returned. Past the message's room ([`crate::SkMsg::room`]): `-ENOMEM`.
//! - `msg_pop_data(msg, start, len, flags)` (91): removes `len` bytes at `start`; `start` at
//!   or past the end, or `start + len` past it: `-EINVAL`. A range strictly inside one element
//!   splits it in two; emptied elements go.
//!
//! Flags other than 0 make pull, push and pop fail with `-EINVAL`. Pull, push and pop may move
//! the message (the verifier forgets every packet pointer after them, as the kernel's
//! `bpf_helper_changes_pkt_data` says); push and pop then put the window back on the first
//! element, as `sk_msg_compute_data_pointers` does. Each helper works on the run's record of
//! the message ([`MsgRun`], kept by the host) and writes the context's `data`, `data_end` and
//! `size` through [`GuestMemory`]; the run writes them again from the record whenever it
//! restores the context (a tail call's target starts on the message as it is).

use crate::helpers::{Cx, run_state};
use crate::sk_msg::{SK_MSG_CTX_SIZE, off};
use bpfx_exec::{GuestMemory, HelperError};

/// `bpf_msg_redirect_map`.
pub(crate) const MSG_REDIRECT_MAP: u32 = 60;
/// `bpf_msg_apply_bytes`.
pub(crate) const MSG_APPLY_BYTES: u32 = 61;
/// `bpf_msg_cork_bytes`.
pub(crate) const MSG_CORK_BYTES: u32 = 62;
/// `bpf_msg_pull_data`.
pub(crate) const MSG_PULL_DATA: u32 = 63;
/// `bpf_msg_redirect_hash`.
pub(crate) const MSG_REDIRECT_HASH: u32 = 71;
/// `bpf_msg_push_data`.
pub(crate) const MSG_PUSH_DATA: u32 = 90;
/// `bpf_msg_pop_data`.
pub(crate) const MSG_POP_DATA: u32 = 91;

const EINVAL: u64 = (-22i64) as u64;
const ENOMEM: u64 = (-12i64) as u64;

/// The message of the running sk_msg program as the host keeps it.
///
/// # Invariants
/// `elems` are above 0 and add up to the message's size, at most `cap`; `start <= end <=`
/// the size.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct MsgRun {
    /// Whether an sk_msg run is under way.
    pub(crate) active: bool,
    /// The context struct's address (what r1 holds at entry).
    pub(crate) ctx: u64,
    /// The address of the message's first byte, and how many bytes it may grow to.
    base: u64,
    cap: u64,
    /// `sk_msg_md.sk`: the address of the socket's `bpf_sock`.
    sk: u64,
    /// The scatterlist elements' lengths.
    pub(crate) elems: Vec<u32>,
    /// The window `data`..`data_end`, as offsets into the message.
    start: u64,
    end: u64,
    /// `msg_apply_bytes`'s and `msg_cork_bytes`'s numbers (0: not set).
    pub(crate) apply_bytes: u32,
    pub(crate) cork_bytes: u32,
}

impl MsgRun {
    /// The record of a run on `buf`, `[sk_msg_md | message | room]` with the message in
    /// elements `elems` and the socket's `bpf_sock` at guest address `sk`: the window on the
    /// first element, written into the struct with the message's size and the socket's
    /// address.
    pub(crate) fn start(buf: &mut [u8], sk: u64, elems: &[u32]) -> MsgRun {
        let ctx = buf.as_ptr() as u64;
        let mut m = MsgRun {
            active: true,
            ctx,
            base: ctx + SK_MSG_CTX_SIZE as u64,
            cap: buf.len().saturating_sub(SK_MSG_CTX_SIZE) as u64,
            sk,
            elems: elems.to_vec(),
            ..MsgRun::default()
        };
        m.window_on_first();
        m.write_into(buf);
        m
    }

    /// The message's length.
    pub(crate) fn size(&self) -> u64 {
        self.elems.iter().map(|&l| u64::from(l)).sum()
    }

    /// `data`, `data_end`, `size` and `sk` as (offset, size, value).
    fn fields(&self) -> [(u16, usize, u64); 4] {
        [
            (off::DATA, 8, self.base + self.start),
            (off::DATA_END, 8, self.base + self.end),
            (off::SIZE, 4, self.size()),
            (off::SK, 8, self.sk),
        ]
    }

    /// Writes the context fields this record sets into the struct at the start of `buf`.
    pub(crate) fn write_into(&self, buf: &mut [u8]) {
        for (at, size, value) in self.fields() {
            let at = usize::from(at);
            if let Some(dst) = buf.get_mut(at..at + size) {
                dst.copy_from_slice(&value.to_le_bytes()[..size]);
            }
        }
    }

    /// The window on the first element (none: empty), as `sk_msg_compute_data_pointers`.
    fn window_on_first(&mut self) {
        self.start = 0;
        self.end = self.elems.first().map_or(0, |&l| u64::from(l));
    }

    /// The element byte `at` lies in, and the offset where it begins.
    fn elem_at(&self, at: u64) -> Option<(usize, u64)> {
        let mut off = 0;
        for (i, &l) in self.elems.iter().enumerate() {
            if at < off + u64::from(l) {
                return Some((i, off));
            }
            off += u64::from(l);
        }
        None
    }
}

fn err(msg: impl Into<String>) -> HelperError {
    HelperError(msg.into())
}

/// The running message, checked to belong to an sk_msg run whose context `ctx` is.
fn message(mem: &mut GuestMemory<'_>, ctx: u64, name: &str) -> Result<MsgRun, HelperError> {
    let m = &run_state(mem)?.msg;
    if !m.active {
        return Err(err(format!("{name} needs an sk_msg program's run")));
    }
    if ctx != m.ctx {
        return Err(err(format!(
            "{name}: the first argument ({ctx:#x}) is not the message's context ({:#x})",
            m.ctx
        )));
    }
    Ok(m.clone())
}

/// Writes the record's context fields through guest memory and keeps it.
fn commit(mem: &mut GuestMemory<'_>, m: MsgRun, name: &str) -> Result<u64, HelperError> {
    for (at, size, value) in m.fields() {
        mem.store(m.ctx + u64::from(at), size, value)
            .ok_or_else(|| err(format!("{name}: cannot write the context")))?;
    }
    run_state(mem)?.msg = m;
    Ok(0)
}

/// Moves the message's bytes `from..size` to start at `to` (within the message's room).
fn shift(
    mem: &mut GuestMemory<'_>,
    m: &MsgRun,
    from: u64,
    to: u64,
    name: &str,
) -> Result<(), HelperError> {
    let tail = mem
        .read(m.base + from, (m.size() - from) as usize)
        .ok_or_else(|| err(format!("{name}: cannot read the message")))?;
    mem.write(m.base + to, &tail)
        .ok_or_else(|| err(format!("{name}: cannot write the message")))
}

/// `msg_apply_bytes(msg, bytes)`.
pub(crate) fn msg_apply_bytes(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let mut m = message(mem, a[0], "msg_apply_bytes")?;
    m.apply_bytes = a[1] as u32;
    run_state(mem)?.msg = m;
    Ok(0)
}

/// `msg_cork_bytes(msg, bytes)`.
pub(crate) fn msg_cork_bytes(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let mut m = message(mem, a[0], "msg_cork_bytes")?;
    m.cork_bytes = a[1] as u32;
    run_state(mem)?.msg = m;
    Ok(0)
}

/// `msg_pull_data(msg, start, end, flags)`.
pub(crate) fn msg_pull_data(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "msg_pull_data";
    let mut m = message(mem, a[0], NAME)?;
    // The kernel's `u32` arguments.
    let (start, end) = (u64::from(a[1] as u32), u64::from(a[2] as u32));
    if a[3] != 0 || end <= start {
        return Ok(EINVAL);
    }
    let Some((first, at)) = m.elem_at(start) else {
        return Ok(EINVAL);
    };
    // The elements from `first` on until `end` is covered.
    let (mut last, mut covered) = (first, at);
    while last < m.elems.len() && covered < end {
        covered += u64::from(m.elems[last]);
        last += 1;
    }
    if covered < end {
        return Ok(EINVAL);
    }
    if last - first > 1 {
        // Joined into one element, as the kernel copies them into one page.
        m.elems.splice(first..last, [(covered - at) as u32]);
    }
    (m.start, m.end) = (start, end);
    commit(mem, m, NAME)
}

/// `msg_push_data(msg, start, len, flags)`.
pub(crate) fn msg_push_data(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "msg_push_data";
    let mut m = message(mem, a[0], NAME)?;
    let (start, len) = (u64::from(a[1] as u32), u64::from(a[2] as u32));
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let size = m.size();
    if start > size {
        return Ok(EINVAL);
    }
    if size + len > m.cap || size + len > u64::from(u32::MAX) {
        return Ok(ENOMEM);
    }
    shift(mem, &m, start, start + len, NAME)?;
    mem.write(m.base + start, &vec![0; len as usize])
        .ok_or_else(|| err(format!("{NAME}: cannot write the message")))?;
    let new = len as u32;
    match m.elem_at(start) {
        Some((i, at)) if at == start => m.elems.insert(i, new),
        Some((i, at)) => {
            let front = (start - at) as u32;
            let back = m.elems[i] - front;
            m.elems.splice(i..=i, [front, new, back]);
        }
        None => m.elems.push(new),
    }
    m.window_on_first();
    commit(mem, m, NAME)
}

/// `msg_pop_data(msg, start, len, flags)`.
pub(crate) fn msg_pop_data(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    const NAME: &str = "msg_pop_data";
    let mut m = message(mem, a[0], NAME)?;
    let (start, len) = (u64::from(a[1] as u32), u64::from(a[2] as u32));
    if a[3] != 0 {
        return Ok(EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let size = m.size();
    let Some((mut i, at)) = m.elem_at(start) else {
        return Ok(EINVAL);
    };
    if start + len > size {
        return Ok(EINVAL);
    }
    shift(mem, &m, start + len, start, NAME)?;
    // The bytes left behind past the new end are room again: cleared.
    mem.write(m.base + size - len, &vec![0; len as usize])
        .ok_or_else(|| err(format!("{NAME}: cannot write the message")))?;
    let (front, l) = (start - at, u64::from(m.elems[i]));
    if front > 0 && start + len < at + l {
        // Strictly inside one element: it splits around the hole.
        let back = (l - front - len) as u32;
        m.elems.splice(i..=i, [front as u32, back]);
    } else {
        let mut pop = len;
        if front > 0 {
            // The element keeps its front; the pop runs on past its end.
            pop -= l - front;
            m.elems[i] = front as u32;
            i += 1;
        }
        while pop > 0 {
            let l = u64::from(m.elems[i]);
            if pop < l {
                m.elems[i] = (l - pop) as u32;
                pop = 0;
            } else {
                pop -= l;
                m.elems.remove(i);
            }
        }
    }
    m.window_on_first();
    commit(mem, m, NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_element_of_a_byte_is_found_by_its_offsets() {
        let m = MsgRun {
            elems: vec![3, 1, 4],
            ..MsgRun::default()
        };
        assert_eq!(m.elem_at(0), Some((0, 0)));
        assert_eq!(m.elem_at(2), Some((0, 0)));
        assert_eq!(m.elem_at(3), Some((1, 3)));
        assert_eq!(m.elem_at(7), Some((2, 4)));
        assert_eq!(m.elem_at(8), None);
        assert_eq!(m.size(), 8);
    }
}

//! sk_msg programs (`BPF_PROG_TYPE_SK_MSG`, section `sk_msg`): attached to a socket map or
//! socket hash, the program sees each message a socket of the map sends (`sendmsg`,
//! `sendfile`) before it is queued, and passes it, drops it, or redirects it to another socket
//! of a map (`bpf_msg_redirect_map`, `bpf_msg_redirect_hash`) — the service-mesh pattern,
//! where a sockops program puts local connections into a socket hash keyed by their 4-tuple
//! and an sk_msg program hands each message straight to the peer socket.
//!
//! The context is the kernel's `struct sk_msg_md` with the rules of `sk_msg_is_valid_access`
//! ([`sk_msg_layout`]): bpfx's struct is the UAPI's own layout ([`SK_MSG_CTX_SIZE`] bytes, the
//! `data`/`data_end` pointers already 64 bits wide), followed by the message and the room
//! `bpf_msg_push_data` may grow it into ([`SkMsg::room`]).
//!
//! ```text
//! sk_msg_md (the program's view = bpfx's struct)
//!   0  u64 data         (address of the accessible window's first byte)
//!   8  u64 data_end     (one past its last)
//!  16  u32 family
//!  20  u32 remote_ip4, 24 u32 local_ip4       (network order)
//!  28  u32 remote_ip6[4], 44 u32 local_ip6[4] (network order)
//!  60  u32 remote_port  (network order, in the field's upper 2 bytes)
//!  64  u32 local_port   (host order)
//!  68  u32 size         (the whole message's length)
//!  72  u64 sk           (the message's socket: address of its `struct bpf_sock`)
//!  80  the message's bytes, then the room
//! ```
//!
//! The socket's `struct bpf_sock` that `sk` points to is a read-only block of guest memory of
//! the [`Program`] (each clone has its own), filled from the run's socket at every run.
//!
//! # The message as the kernel holds it
//! A message is a scatterlist: one or more elements ([`SkMsg::elems`]) whose bytes follow each
//! other. The program's `data`..`data_end` window covers the first element only;
//! `bpf_msg_pull_data` moves it over any range (joining the elements that range spans), and
//! `bpf_msg_push_data`/`bpf_msg_pop_data` add or remove bytes (splitting elements as the
//! kernel does) and put the window back on the first element. bpfx keeps every byte in one
//! buffer, so elements are only lengths: their boundaries decide what the window covers, as in
//! the kernel. The helpers are in `sk_msg_helpers.rs`.
//!
//! The kernel cannot test-run these programs (`BPF_PROG_TEST_RUN` answers `ENOTSUPP`): what a
//! run gives follows the kernel's reading of the return value (`sk_psock_map_verd`), and its
//! verifier is the oracle for what loads (`tests/sk_msg.rs`).

use crate::context::Context;
use crate::error::RunError;
use crate::helpers::RedirectTarget;
use crate::program::Program;
use crate::sk_skb::SkAction;
use crate::sock::{BpfSock, SockIds};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};

/// Size of `struct sk_msg_md`, also bpfx's struct; the message starts right after it.
pub const SK_MSG_CTX_SIZE: usize = 80;

/// The room [`SkMsg::new`] leaves after the message for `bpf_msg_push_data`, in bytes (four
/// pages: a push that would grow the message past it fails with `-ENOMEM`, the kernel's
/// answer when it cannot allocate the pages).
pub const SK_MSG_ROOM: usize = 4 * 4096;

/// The most room a run gives a message, whatever [`SkMsg::room`] asks (4 MiB: the kernel's
/// largest page allocation, `MAX_PAGE_ORDER` on x86-64, bounds what one push can add).
pub const SK_MSG_MAX_ROOM: usize = 4 << 20;

/// `sk_msg_md` field offsets (UAPI, also bpfx's).
pub(crate) mod off {
    pub(crate) const DATA: u16 = 0;
    pub(crate) const DATA_END: u16 = 8;
    pub(crate) const FAMILY: u16 = 16;
    pub(crate) const REMOTE_IP4: u16 = 20;
    pub(crate) const LOCAL_IP4: u16 = 24;
    pub(crate) const REMOTE_IP6: u16 = 28;
    pub(crate) const LOCAL_IP6: u16 = 44;
    pub(crate) const REMOTE_PORT: u16 = 60;
    pub(crate) const LOCAL_PORT: u16 = 64;
    pub(crate) const SIZE: u16 = 68;
    pub(crate) const SK: u16 = 72;
}

/// The `sk_msg_md` of an sk_msg program, as the kernel allows it (`sk_msg_is_valid_access`,
/// checked by loading one-field programs into Linux 6.18): `data` and `data_end` (8-byte
/// loads, giving packet pointers over the message), `family`, `remote_ip4`, `local_ip4`,
/// `remote_ip6[0..4]`, `local_ip6[0..4]`, `remote_port`, `local_port` and `size`, read whole
/// (4-byte loads: no narrow loads), and `sk` (8-byte loads: a full socket pointer that is
/// never null, [`FieldKind::Sock`], the kernel's `PTR_TO_SOCKET`); nothing is writable. The
/// message may be read and written through the packet pointers. Any return value is
/// accepted: `SK_PASS` (1) passes, anything else drops.
pub fn sk_msg_layout() -> ContextLayout {
    use off::*;
    let word = |at: u16| ContextField::new(at, 4, FieldKind::Scalar, at);
    let mut fields = vec![
        ContextField::new(DATA, 8, FieldKind::PacketStart, DATA),
        ContextField::new(DATA_END, 8, FieldKind::PacketEnd, DATA_END),
        word(FAMILY),
        word(REMOTE_IP4),
        word(LOCAL_IP4),
        word(REMOTE_PORT),
        word(LOCAL_PORT),
        word(SIZE),
        ContextField::new(SK, 8, FieldKind::Sock, SK),
    ];
    for i in 0..4 {
        fields.push(word(REMOTE_IP6 + 4 * i));
        fields.push(word(LOCAL_IP6 + 4 * i));
    }
    ContextLayout::new(fields)
}

/// A message an sk_msg program runs on: its bytes, the lengths of the scatterlist elements
/// that hold them, and the room after it that `bpf_msg_push_data` may grow it into. A run
/// leaves the message as the program made it.
///
/// # Invariants
/// The elements' lengths add up to the bytes' length, and none is 0 ([`SkMsg::with_elems`]
/// checks it; the helpers keep it).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SkMsg {
    bytes: Vec<u8>,
    elems: Vec<u32>,
    /// Bytes `bpf_msg_push_data` may add in all (default [`SK_MSG_ROOM`], at most
    /// [`SK_MSG_MAX_ROOM`]); a push past them fails with `-ENOMEM`.
    pub room: usize,
}

impl SkMsg {
    /// A message in one scatterlist element (what a `sendmsg` of up to a page gives): the
    /// program's window covers all of it. An empty message has no element.
    pub fn new(bytes: impl Into<Vec<u8>>) -> SkMsg {
        let bytes = bytes.into();
        let elems = if bytes.is_empty() {
            Vec::new()
        } else {
            vec![bytes.len() as u32]
        };
        SkMsg {
            bytes,
            elems,
            room: SK_MSG_ROOM,
        }
    }

    /// A message in scatterlist elements of these lengths (as a `sendmsg` of several buffers,
    /// or of more than a page, gives): the program's window covers the first element only
    /// until `bpf_msg_pull_data` moves it. `None` unless the lengths are all above 0 and add
    /// up to the bytes' length.
    pub fn with_elems(bytes: impl Into<Vec<u8>>, elems: &[u32]) -> Option<SkMsg> {
        let bytes = bytes.into();
        let total = elems
            .iter()
            .try_fold(0u64, |t, &l| (l > 0).then(|| t + u64::from(l)))?;
        (total == bytes.len() as u64).then(|| SkMsg {
            bytes,
            elems: elems.to_vec(),
            room: SK_MSG_ROOM,
        })
    }

    /// The message's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The lengths of its scatterlist elements, in order.
    pub fn elems(&self) -> &[u32] {
        &self.elems
    }

    /// Its length (`sk_msg_md.size`).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether it has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What an sk_msg run gave.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SkMsgOutcome {
    /// The return value, as the kernel reads it (an `int`).
    pub code: i32,
    /// The verdict's reading of [`SkMsgOutcome::code`]: `SK_PASS` passes the message on to
    /// the socket it was sent on, or with a redirect to the socket the run picked.
    pub action: SkAction,
    /// The socket the run's last successful `msg_redirect_map`/`msg_redirect_hash` picked
    /// (kept whatever the verdict, as the kernel keeps it on the message).
    pub redirect: Option<RedirectTarget>,
    /// The bytes the verdict applies to (`bpf_msg_apply_bytes`; 0: the whole message), which
    /// the kernel keeps for the socket's next messages until they are used up.
    pub apply_bytes: u32,
    /// The bytes the kernel gathers before it runs the program again (`bpf_msg_cork_bytes`;
    /// 0: none).
    pub cork_bytes: u32,
}

/// Writes `sk_msg_md`'s socket fields into bpfx's struct at the start of `buf` from the
/// message's socket `sock`, as the kernel reads them from `msg->sk`: the addresses in network
/// byte order, `remote_port` the destination port in network byte order in the field's upper 2
/// bytes, `local_port` the source port as a host-order number.
fn fill_sock(buf: &mut [u8], sock: &BpfSock) {
    use off::*;
    let mut put = |at: u16, bytes: &[u8]| {
        let at = usize::from(at);
        buf[at..at + bytes.len()].copy_from_slice(bytes);
    };
    put(FAMILY, &sock.family.to_le_bytes());
    put(REMOTE_IP4, &sock.dst_ip4.octets());
    put(LOCAL_IP4, &sock.src_ip4.octets());
    put(REMOTE_IP6, &sock.dst_ip6.octets());
    put(LOCAL_IP6, &sock.src_ip6.octets());
    let [hi, lo] = sock.dst_port.to_be_bytes();
    put(REMOTE_PORT, &[0, 0, hi, lo]);
    put(LOCAL_PORT, &u32::from(sock.src_port).to_le_bytes());
}

impl Program {
    /// Runs an sk_msg program ([`Context::SkMsg`]) on `msg`, a message its socket `sock` sends
    /// (`family`, the addresses and ports the program reads, and the `struct bpf_sock` that
    /// `sk_msg_md.sk` points to, read-only for the run; `ids.netns_cookie` is what
    /// `bpf_get_netns_cookie` answers). The program may rewrite the message, pull, push and
    /// pop its bytes: `msg` holds what it made of them afterwards, also when the run traps (as
    /// far as the program got).
    pub fn run_sk_msg(
        &mut self,
        msg: &mut SkMsg,
        sock: &BpfSock,
        ids: &SockIds,
    ) -> Result<SkMsgOutcome, RunError> {
        if self.context() != Context::SkMsg {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "sk_msg",
            });
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.resize(SK_MSG_CTX_SIZE, 0);
        buf.extend_from_slice(&msg.bytes);
        let room = msg.room.min(SK_MSG_MAX_ROOM);
        buf.resize(SK_MSG_CTX_SIZE + msg.bytes.len() + room, 0);
        fill_sock(&mut buf, sock);
        // `sk`: this program's read-only block, holding the socket's `bpf_sock` for the run.
        let sk = self.place_sock(sock);
        let rec = crate::sk_msg_helpers::MsgRun::start(&mut buf, sk, &msg.elems);
        let (res, rec) = self.exec_with(
            &mut buf,
            |st| {
                st.msg = rec;
                st.sock.cookie = ids.cookie;
                st.sock.netns_cookie = ids.netns_cookie;
            },
            |st| std::mem::take(&mut st.msg),
        );
        let size = rec.size() as usize;
        msg.bytes.clear();
        msg.bytes
            .extend_from_slice(&buf[SK_MSG_CTX_SIZE..SK_MSG_CTX_SIZE + size]);
        msg.elems = rec.elems;
        self.buf = buf;
        let code = res? as i32;
        let redirect = self.last_redirect();
        Ok(SkMsgOutcome {
            code,
            action: SkAction::new(code, redirect.is_some()),
            redirect,
            apply_bytes: rec.apply_bytes,
            cork_bytes: rec.cork_bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_must_cover_the_bytes_exactly() {
        assert_eq!(SkMsg::new(*b"abc").elems(), [3]);
        assert_eq!(SkMsg::new(Vec::new()).elems(), [0u32; 0]);
        assert!(SkMsg::with_elems(*b"abcd", &[1, 3]).is_some());
        assert!(SkMsg::with_elems(*b"abcd", &[1, 2]).is_none());
        assert!(SkMsg::with_elems(*b"abcd", &[0, 4]).is_none());
        assert!(SkMsg::with_elems(*b"", &[]).is_some());
    }

    #[test]
    fn the_layout_covers_the_uapi_fields_and_nothing_is_writable() {
        let l = sk_msg_layout();
        assert_eq!(l.fields.len(), 17);
        assert!(l.fields.iter().all(|f| !f.writable && !f.narrow));
        let sk = l.fields.iter().find(|f| f.off == 72).expect("sk");
        assert_eq!((sk.size, sk.kind), (8, FieldKind::Sock));
    }
}

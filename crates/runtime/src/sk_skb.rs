//! sk_skb programs (`BPF_PROG_TYPE_SK_SKB`): attached to a socket map or socket hash, a stream
//! parser (`sk_skb/stream_parser`) tells how long the next message of a socket's stream is,
//! and a stream verdict (`sk_skb/stream_verdict`, `sk_skb/verdict`, or `sk_skb` with no attach
//! type) passes a message to its socket, drops it, or redirects it to another socket of a map
//! (`bpf_sk_redirect_map`, `bpf_sk_redirect_hash`).
//!
//! The context is the kernel's `struct __sk_buff` with the rules of `sk_skb_is_valid_access`
//! ([`crate::sk_skb_layout`]), in bpfx's socket-buffer struct ([`crate::SKB_CTX_SIZE`] bytes,
//! as TC's) followed by the stream data, which the program may read and write. The data's
//! socket gives `family`, the addresses and ports (a [`BpfSock`]) and its cookie
//! ([`SockIds`]).
//!
//! The kernel cannot test-run these programs (`BPF_PROG_TEST_RUN` answers `ENOTSUPP`): what a
//! run gives follows the kernel's reading of the return value (`sk_psock_map_verd`).

use crate::context::Context;
use crate::error::RunError;
use crate::helpers::RedirectTarget;
use crate::program::Program;
use crate::skb::{self, SKB_CTX_SIZE, SkbMeta};
use crate::sock::{BpfSock, SockIds};
use std::fmt;

/// `SK_PASS`, the verdict that lets the data go on (`SK_DROP` is 0).
pub const SK_PASS: u32 = 1;

/// What becomes of the data after a verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkAction {
    /// `SK_PASS` without a redirect: to the socket's receive queue.
    Pass,
    /// `SK_PASS` after a successful `sk_redirect_map`/`sk_redirect_hash`: to the socket the
    /// run picked ([`SkSkbOutcome::redirect`]).
    Redirect,
    /// `SK_DROP` (0), or any value but `SK_PASS`.
    Drop,
}

/// What an sk_skb run gave.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SkSkbOutcome {
    /// The return value, as the kernel reads it (an `int`): a verdict, or for a stream parser
    /// the length of the next message (0: more data is needed; negative: an error).
    pub code: i32,
    /// The verdict's reading of [`SkSkbOutcome::code`].
    pub action: SkAction,
    /// The socket the run's last successful redirect picked (kept whatever the verdict, as
    /// the kernel keeps it on the skb).
    pub redirect: Option<RedirectTarget>,
}

impl fmt::Display for SkAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SkAction::Pass => "SK_PASS",
            SkAction::Redirect => "SK_PASS (redirect)",
            SkAction::Drop => "SK_DROP",
        })
    }
}

impl SkAction {
    /// The action of return value `code`, with or without a redirect target.
    pub fn new(code: i32, redirected: bool) -> SkAction {
        match (code as u32 == SK_PASS, redirected) {
            (true, true) => SkAction::Redirect,
            (true, false) => SkAction::Pass,
            (false, _) => SkAction::Drop,
        }
    }
}

impl Program {
    /// Runs an sk_skb program ([`Context::SkSkb`]) on `data`, the stream data, which the
    /// program may rewrite (it holds the final bytes afterwards, also when the run traps), with
    /// the socket buffer's metadata `meta` and the data's socket `sock` (`family`, the
    /// addresses and ports the program reads; `ids.cookie` is what `bpf_get_socket_cookie`
    /// answers). The fields an sk_skb program may write (`priority`, `tc_index`) come back in
    /// `meta`.
    pub fn run_sk_skb(
        &mut self,
        data: &mut [u8],
        meta: &mut SkbMeta,
        sock: &BpfSock,
        ids: &SockIds,
    ) -> Result<SkSkbOutcome, RunError> {
        if self.context() != Context::SkSkb {
            return Err(RunError::WrongContext {
                program: self.name().to_string(),
                expected: self.context().name(),
                got: "sk_skb",
            });
        }
        let res = self.run_skb_on_sock(data, meta, sock, ids, skb::read_back_sk_skb);
        // The run buffer, kept in `self.buf`, holds what the program left of the data.
        data.copy_from_slice(&self.buf[SKB_CTX_SIZE..SKB_CTX_SIZE + data.len()]);
        let code = res? as i32;
        let redirect = self.last_redirect();
        Ok(SkSkbOutcome {
            code,
            action: SkAction::new(code, redirect.is_some()),
            redirect,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_read_the_return_value_as_the_kernel_does() {
        assert_eq!(SkAction::new(1, false), SkAction::Pass);
        assert_eq!(SkAction::new(1, true), SkAction::Redirect);
        assert_eq!(SkAction::new(0, true), SkAction::Drop);
        assert_eq!(SkAction::new(2, false), SkAction::Drop);
        assert_eq!(SkAction::new(-1, true), SkAction::Drop);
        assert_eq!(SkAction::Redirect.to_string(), "SK_PASS (redirect)");
    }
}

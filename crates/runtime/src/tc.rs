//! The outcome of a TC run as one value ([`TcOutcome`]): the verdict, the socket buffer's
//! metadata as the program left it, and where a redirect sends the packet.

use crate::error::Error;
use crate::helpers::RedirectTarget;
use crate::program::Program;
use crate::skb::{SkbMeta, TcAction};

/// What a TC run gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcOutcome {
    /// The verdict (`TC_ACT_*`).
    pub action: TcAction,
    /// The metadata after the run: what the run started with, and the fields a TC program
    /// may write (`mark`, `priority`, `tc_index`, `tc_classid`, `queue_mapping`, `cb`,
    /// `tstamp`) as it left them, with the kernel's widths, and `hash` as the hash helpers
    /// left it (`set_hash`, `get_hash_recalc`, `skb_store_bytes` with `BPF_F_INVALIDATE_HASH`).
    pub meta: SkbMeta,
    /// Where the run's last successful `redirect` (or `redirect_map`) sent the packet; what
    /// [`TcAction::Redirect`] means.
    pub redirect: Option<RedirectTarget>,
}

impl Program {
    /// [`Program::run_tc`] with the whole outcome: the packet may be rewritten in place, and
    /// `meta` is left as it was (the outcome carries the metadata after the run).
    pub fn run_tc_outcome(
        &mut self,
        packet: &mut [u8],
        meta: &SkbMeta,
    ) -> Result<TcOutcome, Error> {
        let mut after = *meta;
        let action = self.run_tc(packet, &mut after)?;
        Ok(TcOutcome {
            action,
            meta: after,
            redirect: self.last_redirect(),
        })
    }
}

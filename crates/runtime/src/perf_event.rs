//! The perf event context (`BPF_PROG_TYPE_PERF_EVENT`): `struct bpf_perf_event_data`, what a
//! program attached to a perf event (a sampling timer, a hardware counter overflow) reads,
//! and `bpf_perf_prog_read_value`.
//!
//! ```text
//! bpf_perf_event_data (184 bytes, read-only)
//!   0 regs (x86-64's struct pt_regs, 168 bytes): 8-byte reads of one register only
//! 168 sample_period   u64: any aligned read inside it (narrow loads)
//! 176 addr            u64: the same
//! ```
//!
//! As in the kernel, the struct is the program's and bpfx's layout alike (nothing is
//! converted) and every store is refused.

use crate::helpers::Cx;
use crate::{Context, Program, PtRegs, RunError};
use bpfx_exec::{GuestMemory, HelperError};
use bpfx_verifier::{ContextField, ContextLayout, FieldKind};

/// Size of `struct bpf_perf_event_data` on x86-64.
pub const PERF_EVENT_DATA_SIZE: usize = 184;
/// Size of `struct bpf_perf_event_value` (`counter`, `enabled`, `running`).
pub const PERF_EVENT_VALUE_SIZE: usize = 24;
/// `bpf_perf_prog_read_value`.
pub const PERF_PROG_READ_VALUE: u32 = 56;

const EINVAL: u64 = (-22i64) as u64;

/// The perf event context's fields: the 21 registers, each read whole (8 bytes), then
/// `sample_period` and `addr`, read whole or narrow.
pub fn perf_event_layout() -> ContextLayout {
    let regs = (0..crate::PT_REGS_SIZE as u16)
        .step_by(8)
        .map(|off| ContextField::new(off, 8, FieldKind::Scalar, off));
    let rest = [168u16, 176]
        .map(|off| ContextField::new(off, 8, FieldKind::Scalar, off).with_narrow(true));
    ContextLayout::new(regs.chain(rest).collect())
}

/// `struct bpf_perf_event_value`: the event counter's value and its enabled and running
/// times, what `bpf_perf_prog_read_value` reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerfEventValue {
    /// `counter`.
    pub counter: u64,
    /// `enabled` (nanoseconds the event was enabled).
    pub enabled: u64,
    /// `running` (nanoseconds it was counting).
    pub running: u64,
}

impl PerfEventValue {
    fn to_bytes(self) -> [u8; PERF_EVENT_VALUE_SIZE] {
        let mut b = [0u8; PERF_EVENT_VALUE_SIZE];
        for (chunk, v) in b
            .chunks_exact_mut(8)
            .zip([self.counter, self.enabled, self.running])
        {
            chunk.copy_from_slice(&v.to_le_bytes());
        }
        b
    }
}

/// `struct bpf_perf_event_data`: one sample of a perf event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct PerfEventData {
    /// `regs`: the registers the sample interrupted.
    pub regs: PtRegs,
    /// `sample_period`.
    pub sample_period: u64,
    /// `addr` (the data address of the sample, when the event records one).
    pub addr: u64,
}

impl PerfEventData {
    /// The struct's bytes ([`PERF_EVENT_DATA_SIZE`], little-endian).
    pub fn to_bytes(&self) -> [u8; PERF_EVENT_DATA_SIZE] {
        let mut b = [0u8; PERF_EVENT_DATA_SIZE];
        b[..crate::PT_REGS_SIZE].copy_from_slice(&self.regs.to_bytes());
        b[168..176].copy_from_slice(&self.sample_period.to_le_bytes());
        b[176..184].copy_from_slice(&self.addr.to_le_bytes());
        b
    }

    /// The struct from its bytes (at least [`PERF_EVENT_DATA_SIZE`]; `None` if shorter).
    pub fn from_bytes(b: &[u8]) -> Option<PerfEventData> {
        let b = b.get(..PERF_EVENT_DATA_SIZE)?;
        let u = |off: usize| b[off..off + 8].try_into().ok().map(u64::from_le_bytes);
        Some(PerfEventData {
            regs: PtRegs::from_bytes(b)?,
            sample_period: u(168)?,
            addr: u(176)?,
        })
    }
}

/// `perf_prog_read_value(ctx, buf, size)`: the event's [`PerfEventValue`] into `buf`, 0;
/// `-EINVAL` with `buf` zeroed unless `size` is exactly [`PERF_EVENT_VALUE_SIZE`].
pub(crate) fn perf_prog_read_value(
    _: &Cx,
    mem: &mut GuestMemory<'_>,
    a: [u64; 5],
) -> Result<u64, HelperError> {
    let size = (a[2] & 0xffff_ffff) as usize;
    let (bytes, ret) = if size == PERF_EVENT_VALUE_SIZE {
        let v = crate::helpers::run_state_ref(mem)?.perf_value;
        (v.to_bytes().to_vec(), 0)
    } else {
        (vec![0u8; size], EINVAL)
    };
    mem.write(a[1], &bytes)
        .ok_or_else(|| HelperError("perf_prog_read_value: cannot write the buffer".into()))?;
    Ok(ret)
}

impl Program {
    /// Runs a perf event program ([`Context::PerfEvent`]) on one sample, `value` being what
    /// `bpf_perf_prog_read_value` reads; returns r0 (the kernel ignores it).
    pub fn run_perf_event(
        &mut self,
        data: &PerfEventData,
        value: &PerfEventValue,
    ) -> Result<u64, RunError> {
        self.expect(Context::PerfEvent)?;
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        buf.extend_from_slice(&data.to_bytes());
        let value = *value;
        let attach = self.attach();
        let res = self
            .exec_with(
                &mut buf,
                |st| {
                    st.perf_value = value;
                    st.trace = crate::trace::TraceRun {
                        attach,
                        ..Default::default()
                    };
                },
                |_| (),
            )
            .0;
        self.buf = buf;
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_round_trips_and_registers_are_whole_words() {
        let d = PerfEventData {
            regs: PtRegs::with_args(&[1, 2]),
            sample_period: 100_000,
            addr: 0xdead,
        };
        let b = d.to_bytes();
        assert_eq!(b[112..120], 1u64.to_le_bytes());
        assert_eq!(PerfEventData::from_bytes(&b), Some(d));
        assert_eq!(PerfEventData::from_bytes(&b[..183]), None);
        let l = perf_event_layout();
        assert_eq!(l.fields.len(), 23);
        assert!(l.fields[..21].iter().all(|f| f.size == 8 && !f.narrow));
        assert!(l.fields[21..].iter().all(|f| f.narrow && !f.writable));
    }
}

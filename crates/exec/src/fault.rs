//! What an out-of-bounds access tried to touch, and the regions it was checked against: the
//! detail of a [`TrapKind::OutOfBounds`](crate::TrapKind::OutOfBounds) trap at a load, store
//! or atomic, recorded by every engine in [`Env::fault`](crate::Env::fault).
//!
//! Both engines build it with [`AccessFault::new`] from the same run state (the input, the
//! active stack frames at the fault, the shared blocks in [`Env::shared`](crate::Env::shared)
//! order), so its text is the same on each: the address, the size, the kind of access and
//! every region, as `stack [0x7ffc0000,+512)`.

use crate::STACK_FRAME_SIZE;
use crate::shared::SharedMem;
use std::fmt;
use std::sync::Arc;

/// How many shared blocks [`AccessFault`]'s text lists before it counts the rest.
pub const LISTED_SHARED: usize = 8;

/// Which region a [`FaultRegion`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    /// The input memory (or the context and packet it holds).
    Input,
    /// The active stack frames: the faulting function's and its callers'.
    Stack,
    /// A shared block (a map value, global data, a ring buffer), writable or not.
    Shared {
        /// Whether programs may store into it.
        writable: bool,
    },
}

impl RegionKind {
    /// `input`, `stack` or `shared`, stable for JSON output.
    pub const fn name(self) -> &'static str {
        match self {
            RegionKind::Input => "input",
            RegionKind::Stack => "stack",
            RegionKind::Shared { .. } => "shared",
        }
    }
}

/// One region an access was checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FaultRegion {
    /// Which region.
    pub kind: RegionKind,
    /// Its first byte's address.
    pub start: u64,
    /// Its size in bytes.
    pub len: u64,
}

impl fmt::Display for FaultRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{:#x},+{})", self.kind.name(), self.start, self.len)?;
        if self.kind == (RegionKind::Shared { writable: false }) {
            f.write_str(" read-only")?;
        }
        Ok(())
    }
}

/// An access outside every region it may touch.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AccessFault {
    /// The access's address (`base + off`, wrapped).
    pub addr: u64,
    /// Its size in bytes (1, 2, 4 or 8).
    pub size: u32,
    /// A store or an atomic (which must find a writable region), not a load.
    pub write: bool,
    /// The regions it was checked against: the input (when not empty), the active stack,
    /// then the shared blocks in [`Env::shared`](crate::Env::shared) order.
    pub regions: Vec<FaultRegion>,
}

impl AccessFault {
    /// The fault of a `size`-byte access at `addr` in a run whose input is `input_len` bytes
    /// at `input_addr`, whose active stack frames end at `stack_top` and begin at the faulting
    /// function's frame pointer `fp` less one frame, and whose shared blocks are `shared`.
    pub fn new(
        addr: u64,
        size: u32,
        write: bool,
        (input_addr, input_len): (u64, u64),
        (fp, stack_top): (u64, u64),
        shared: &[Arc<SharedMem>],
    ) -> AccessFault {
        let mut regions = Vec::with_capacity(2 + shared.len());
        if input_len > 0 {
            regions.push(FaultRegion {
                kind: RegionKind::Input,
                start: input_addr,
                len: input_len,
            });
        }
        let bottom = fp.wrapping_sub(STACK_FRAME_SIZE as u64);
        regions.push(FaultRegion {
            kind: RegionKind::Stack,
            start: bottom,
            len: stack_top.wrapping_sub(bottom),
        });
        regions.extend(shared.iter().map(|m| FaultRegion {
            kind: RegionKind::Shared {
                writable: m.writable(),
            },
            start: m.addr(),
            len: m.len() as u64,
        }));
        AccessFault {
            addr,
            size,
            write,
            regions,
        }
    }
}

impl fmt::Display for AccessFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.write { "write" } else { "read" };
        let s = if self.size == 1 { "" } else { "s" };
        write!(
            f,
            "{what} of {} byte{s} at {:#x}, outside ",
            self.size, self.addr
        )?;
        let mut shared = 0;
        let mut first = true;
        for r in &self.regions {
            if matches!(r.kind, RegionKind::Shared { .. }) {
                shared += 1;
                if shared > LISTED_SHARED {
                    continue;
                }
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{r}")?;
        }
        if shared > LISTED_SHARED {
            write!(f, " and {} more shared blocks", shared - LISTED_SHARED)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_names_the_access_and_every_region() {
        let shared = [SharedMem::new(8, true), SharedMem::new(4, false)];
        let f = AccessFault::new(0x1000, 4, false, (0x2000, 64), (0x9000, 0x9200), &shared);
        let text = f.to_string();
        assert!(
            text.starts_with(
                "read of 4 bytes at 0x1000, outside input [0x2000,+64), stack [0x8e00,+1024), shared ["
            ),
            "{text}"
        );
        assert!(text.ends_with(",+4) read-only"), "{text}");
        assert_eq!(f.regions.len(), 4);
        // No input: not listed; one byte: singular.
        let f = AccessFault::new(7, 1, true, (0, 0), (0x9200, 0x9200), &[]);
        assert_eq!(
            f.to_string(),
            "write of 1 byte at 0x7, outside stack [0x9000,+512)"
        );
    }

    #[test]
    fn many_shared_blocks_are_counted_not_listed() {
        let shared: Vec<_> = (0..LISTED_SHARED + 3)
            .map(|_| SharedMem::new(8, true))
            .collect();
        let f = AccessFault::new(0, 8, false, (0, 0), (512, 512), &shared);
        let text = f.to_string();
        assert_eq!(text.matches("shared [").count(), LISTED_SHARED, "{text}");
        assert!(text.ends_with(" and 3 more shared blocks"), "{text}");
    }
}

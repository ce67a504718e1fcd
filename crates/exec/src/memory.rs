//! Guest memory: the regions a program may touch, and the one bounds rule every engine applies.

use crate::STACK_FRAME_SIZE;
use crate::shared::SharedMem;
use std::any::Any;
use std::sync::Arc;

/// A contiguous range of guest-accessible bytes at a host address.
#[derive(Debug)]
pub struct Region<'a> {
    /// Host address of `bytes[0]` (what the program sees as a pointer).
    pub addr: u64,
    /// The bytes.
    pub bytes: &'a mut [u8],
}

impl<'a> Region<'a> {
    /// The region covering `bytes`, at their own address.
    pub fn new(bytes: &'a mut [u8]) -> Region<'a> {
        Region {
            addr: bytes.as_ptr() as u64,
            bytes,
        }
    }

    /// The offset of `[addr, addr + len)` inside this region, if it lies wholly inside.
    ///
    /// Written so that nothing can wrap: `addr - start` wraps to a huge value when `addr` is
    /// below the region, and the comparison is against `size - len`, never `addr + len`.
    pub fn offset_of(&self, addr: u64, len: usize) -> Option<usize> {
        let rel = addr.wrapping_sub(self.addr);
        let size = self.bytes.len() as u64;
        let len = len as u64;
        (len <= size && rel <= size - len).then_some(rel as usize)
    }

    /// Copies `data` to `addr`, if the whole range lies inside this region.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Option<()> {
        let at = self.offset_of(addr, data.len())?;
        self.bytes[at..at + data.len()].copy_from_slice(data);
        Some(())
    }
}

/// Alignment of the stack buffer's top (and so of every frame pointer), in bytes.
pub const STACK_ALIGN: usize = 16;

/// The stack buffer: `frames` frames of [`STACK_FRAME_SIZE`] bytes. Frame 0 (the outermost) is
/// at the top; frame `k` spans `[top - 512 (k + 1), top - 512 k)`, and its `r10` is
/// `top - 512 k`.
///
/// # Invariants
/// `start + frames * 512 <= buf.len()` and `buf[start..]` begins at a [`STACK_ALIGN`]-aligned
/// address; the buffer is never reallocated, so addresses handed to a program stay valid. Every
/// byte more than `dirty` bytes below the top is zero, so [`Stack::clear`] zeroes only the top
/// `dirty` bytes: a run that stays in its outermost frame costs a 512-byte clear, not the whole
/// buffer's.
#[derive(Debug)]
pub struct Stack {
    buf: Vec<u8>,
    start: usize,
    frames: u32,
    dirty: usize,
}

impl Stack {
    /// A zeroed stack of `frames` frames (at least 1), 16-byte aligned.
    pub fn new(frames: u32) -> Stack {
        let frames = frames.max(1);
        let size = frames as usize * STACK_FRAME_SIZE;
        let buf = vec![0u8; size + STACK_ALIGN];
        let misalign = buf.as_ptr() as usize % STACK_ALIGN;
        let start = (STACK_ALIGN - misalign) % STACK_ALIGN;
        Stack {
            buf,
            start,
            frames,
            dirty: 0,
        }
    }

    /// Number of frames.
    #[inline]
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Size in bytes.
    #[inline]
    pub fn size(&self) -> usize {
        self.frames as usize * STACK_FRAME_SIZE
    }

    /// Zeroes every byte (only those that may have been written since the last clear).
    #[inline]
    pub fn clear(&mut self) {
        // A run that wrote nothing (a program that never stores to its stack) costs no call.
        if self.dirty == 0 {
            return;
        }
        let end = self.start + self.size();
        self.buf[end - self.dirty..end].fill(0);
        self.dirty = 0;
    }

    /// Host address of the first byte.
    pub fn base(&self) -> u64 {
        self.bytes().as_ptr() as u64
    }

    /// Host address one past the last byte: the outermost frame's `r10`.
    pub fn top(&self) -> u64 {
        self.base() + self.size() as u64
    }

    /// The `r10` of frame `depth` (0 = outermost).
    pub fn frame_pointer(&self, depth: u32) -> u64 {
        self.top() - u64::from(depth) * STACK_FRAME_SIZE as u64
    }

    /// The whole buffer as bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.start + self.size()]
    }

    /// The whole buffer as mutable bytes (the next [`Stack::clear`] zeroes all of it).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        self.lend(self.size())
    }

    /// The whole buffer as mutable bytes, for a run that writes only the top `written` bytes:
    /// an engine that knows how deep its program can reach (its call graph, or the offsets
    /// its accesses use) lends the buffer this way, and the next [`Stack::clear`] zeroes only
    /// those bytes. Writing below them leaves bytes that a later clear misses.
    #[inline]
    pub fn lend(&mut self, written: usize) -> &mut [u8] {
        let size = self.size();
        self.dirty = self.dirty.max(written.min(size));
        &mut self.buf[self.start..self.start + size]
    }

    /// The region a function at `depth` may access: its own frame and its callers'.
    pub fn active_region(&mut self, depth: u32) -> Region<'_> {
        let frames = depth.saturating_add(1).min(self.frames);
        let keep = frames as usize * STACK_FRAME_SIZE;
        let bytes = self.lend(keep);
        let start = bytes.len() - keep;
        Region::new(&mut bytes[start..])
    }
}

/// The memory a program may touch during a run: the input region, the active stack, and the
/// shared blocks the embedder lends (map values, global data, ring buffers).
#[derive(Debug)]
pub struct GuestMemory<'a> {
    /// The input memory (may be empty).
    pub input: Region<'a>,
    /// The active stack frames.
    pub stack: Region<'a>,
    /// Shared blocks, searched in order after the input and the stack.
    pub shared: &'a [Arc<SharedMem>],
    /// The embedder's state of the run ([`crate::Env::host`]), which its helpers reach through
    /// [`GuestMemory::host`]: no guest address leads to it.
    pub host: Option<&'a mut (dyn Any + Send + Sync + 'static)>,
}

/// Where an accessible range lives.
enum Place<'b> {
    Owned(&'b mut [u8]),
    Shared(&'b SharedMem, usize),
}

impl<'a> GuestMemory<'a> {
    /// The embedder's run state ([`crate::Env::host`]), if it is a `T`.
    #[inline]
    pub fn host<T: Any>(&mut self) -> Option<&mut T> {
        self.host.as_deref_mut()?.downcast_mut()
    }

    /// [`GuestMemory::host`], read-only.
    #[inline]
    pub fn host_ref<T: Any>(&self) -> Option<&T> {
        self.host.as_deref()?.downcast_ref()
    }

    /// Where `[addr, addr + len)` lives, if one region holds it whole (and, for `write`, lets
    /// programs store into it). The order, input then stack then shared blocks, is the order the
    /// JIT's guards test them in.
    fn locate(&mut self, addr: u64, len: usize, write: bool) -> Option<Place<'_>> {
        if let Some(o) = self.input.offset_of(addr, len) {
            return Some(Place::Owned(&mut self.input.bytes[o..o + len]));
        }
        if let Some(o) = self.stack.offset_of(addr, len) {
            return Some(Place::Owned(&mut self.stack.bytes[o..o + len]));
        }
        self.shared.iter().find_map(|m| {
            let o = m.offset_of(addr, len)?;
            (!write || m.writable()).then_some(Place::Shared(m, o))
        })
    }

    /// Whether a program may access `[addr, addr + len)` (for writing, when `write`).
    pub fn accessible(&mut self, addr: u64, len: usize, write: bool) -> bool {
        self.locate(addr, len, write).is_some()
    }

    /// Copies `len` bytes at `addr`, if they are readable.
    pub fn read(&mut self, addr: u64, len: usize) -> Option<Vec<u8>> {
        Some(match self.locate(addr, len, false)? {
            Place::Owned(b) => b.to_vec(),
            Place::Shared(m, o) => {
                let mut v = vec![0; len];
                m.read(o, &mut v);
                v
            }
        })
    }

    /// Copies `out.len()` bytes at `addr` into `out`, if they are readable (no allocation:
    /// for keys and values a helper reads into a buffer of its own).
    pub fn read_into(&mut self, addr: u64, out: &mut [u8]) -> Option<()> {
        match self.locate(addr, out.len(), false)? {
            Place::Owned(b) => out.copy_from_slice(b),
            Place::Shared(m, o) => m.read(o, out),
        }
        Some(())
    }

    /// Copies `data` to `addr`, if the whole range is writable.
    pub fn write(&mut self, addr: u64, data: &[u8]) -> Option<()> {
        match self.locate(addr, data.len(), true)? {
            Place::Owned(b) => b.copy_from_slice(data),
            Place::Shared(m, o) => m.write(o, data),
        }
        Some(())
    }

    /// Loads a little-endian value of `size` bytes (1, 2, 4 or 8), zero-extended.
    pub fn load(&mut self, addr: u64, size: usize) -> Option<u64> {
        Some(match self.locate(addr, size, false)? {
            Place::Owned(b) => {
                let mut v = [0u8; 8];
                v[..size].copy_from_slice(b);
                u64::from_le_bytes(v)
            }
            Place::Shared(m, o) => m.load(o, size),
        })
    }

    /// Stores the low `size` bytes of `value`, little-endian.
    pub fn store(&mut self, addr: u64, size: usize, value: u64) -> Option<()> {
        self.write(addr, &value.to_le_bytes()[..size])
    }

    /// Read-modify-write of the `size`-byte value at `addr` (atomic on shared memory, see
    /// [`SharedMem::update`]); returns the old value. Needs a writable range, even when `f`
    /// leaves the value unchanged, as a locked x86 instruction does.
    pub fn update(&mut self, addr: u64, size: usize, f: impl Fn(u64) -> u64) -> Option<u64> {
        Some(match self.locate(addr, size, true)? {
            Place::Owned(b) => {
                let mut v = [0u8; 8];
                v[..size].copy_from_slice(b);
                let old = u64::from_le_bytes(v);
                b.copy_from_slice(&f(old).to_le_bytes()[..size]);
                old
            }
            Place::Shared(m, o) => m.update(o, size, f),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_into_copies_from_each_region_or_refuses() {
        let mut buf = [7u8; 16];
        let a = buf.as_ptr() as u64;
        let mut stack = Stack::new(1);
        let shared = [SharedMem::from_bytes(&[1, 2, 3, 4], false)];
        let s = shared[0].addr();
        let mut m = GuestMemory {
            input: Region::new(&mut buf),
            stack: stack.active_region(0),
            shared: &shared,
            host: None,
        };
        let mut out = [0u8; 4];
        assert_eq!(m.read_into(a + 12, &mut out), Some(()));
        assert_eq!(out, [7; 4]);
        assert_eq!(m.read_into(s, &mut out), Some(()));
        assert_eq!(out, [1, 2, 3, 4]);
        let mut two = [0u8; 2];
        assert_eq!(m.read_into(s + 2, &mut two), Some(()));
        assert_eq!(two, [3, 4]);
        out = [9; 4];
        assert_eq!(m.read_into(a + 13, &mut out), None, "past the input");
        assert_eq!(m.read_into(s + 1, &mut out), None, "past the block");
        assert_eq!(out, [9; 4], "nothing copied on a refusal");
    }

    #[test]
    fn region_bounds_never_wrap() {
        let mut buf = [0u8; 16];
        let r = Region::new(&mut buf);
        let a = r.addr;
        assert_eq!(r.offset_of(a, 16), Some(0));
        assert_eq!(r.offset_of(a + 8, 8), Some(8));
        assert_eq!(r.offset_of(a + 9, 8), None);
        assert_eq!(r.offset_of(a.wrapping_sub(1), 1), None);
        assert_eq!(r.offset_of(u64::MAX, 8), None, "addr + len wraps");
        assert_eq!(r.offset_of(a, 17), None);
        let mut empty: [u8; 0] = [];
        let e = Region::new(&mut empty);
        assert_eq!(e.offset_of(e.addr, 1), None);
    }

    #[test]
    fn stack_is_aligned_and_active_region_grows_with_depth() {
        let mut s = Stack::new(8);
        assert_eq!(s.top() % STACK_ALIGN as u64, 0);
        assert_eq!(s.frame_pointer(0), s.top());
        assert_eq!(s.frame_pointer(1), s.top() - 512);
        let top = s.top();
        let r = s.active_region(0);
        assert_eq!((r.addr, r.bytes.len()), (top - 512, 512));
        let r = s.active_region(2);
        assert_eq!((r.addr, r.bytes.len()), (top - 1536, 1536));
    }

    /// `clear` zeroes only what may have been written, so every way of writing must widen it.
    #[test]
    fn clear_zeroes_whatever_any_writer_reached() {
        let mut s = Stack::new(4);
        // Through an active region at depth 2: frames 0..=2.
        s.active_region(2).bytes.fill(0xaa);
        s.clear();
        assert!(s.bytes().iter().all(|&b| b == 0));
        // Through a lend of two frames, written within them.
        let b = s.lend(1024);
        let n = b.len();
        b[n - 1024..].fill(0xbb);
        s.clear();
        assert!(s.bytes().iter().all(|&b| b == 0));
        // Through the whole buffer: the bottom byte too.
        s.bytes_mut()[0] = 1;
        s.clear();
        assert_eq!(s.bytes()[0], 0);
        // A lend never narrows what an earlier writer reached.
        s.bytes_mut()[0] = 1;
        s.lend(8);
        s.clear();
        assert_eq!(s.bytes()[0], 0);
        // Depths past the buffer are clamped, not a panic.
        s.active_region(u32::MAX).bytes.fill(0xcc);
        s.lend(usize::MAX);
        s.clear();
        assert!(s.bytes().iter().all(|&b| b == 0));
    }

    #[test]
    fn guest_memory_loads_and_stores_little_endian() {
        let mut input = [0u8; 8];
        let mut stack = Stack::new(1);
        let addr = input.as_ptr() as u64;
        let ro = SharedMem::from_bytes(&[7; 8], false);
        let rw = SharedMem::new(8, true);
        let shared = [ro.clone(), rw.clone()];
        let mut m = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
            shared: &shared,
            host: None,
        };
        m.store(addr, 4, 0x1122_3344_5566).unwrap();
        assert_eq!(m.load(addr, 8), Some(0x3344_5566));
        assert_eq!(m.load(addr + 1, 8), None);
        assert_eq!(m.load(ro.addr(), 1), Some(7));
        assert_eq!(
            m.store(ro.addr(), 1, 0),
            None,
            "read-only shared memory refuses stores"
        );
        assert_eq!(m.update(ro.addr(), 1, |v| v), None, "and atomics");
        assert_eq!(m.update(rw.addr() + 4, 4, |v| v + 5), Some(0));
        assert_eq!(rw.load(4, 4), 5);
    }
}

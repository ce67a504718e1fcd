//! Guest memory: the regions a program may touch, and the one bounds rule every engine applies.

use crate::STACK_FRAME_SIZE;

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
}

/// Alignment of the stack buffer's top (and so of every frame pointer), in bytes.
pub const STACK_ALIGN: usize = 16;

/// The stack buffer: `frames` frames of [`STACK_FRAME_SIZE`] bytes. Frame 0 (the outermost) is
/// at the top; frame `k` spans `[top - 512 (k + 1), top - 512 k)`, and its `r10` is
/// `top - 512 k`.
///
/// # Invariants
/// `start + frames * 512 <= buf.len()` and `buf[start..]` begins at a [`STACK_ALIGN`]-aligned
/// address; the buffer is never reallocated, so addresses handed to a program stay valid.
#[derive(Debug)]
pub struct Stack {
    buf: Vec<u8>,
    start: usize,
    frames: u32,
}

impl Stack {
    /// A zeroed stack of `frames` frames (at least 1), 16-byte aligned.
    pub fn new(frames: u32) -> Stack {
        let frames = frames.max(1);
        let size = frames as usize * STACK_FRAME_SIZE;
        let buf = vec![0u8; size + STACK_ALIGN];
        let misalign = buf.as_ptr() as usize % STACK_ALIGN;
        let start = (STACK_ALIGN - misalign) % STACK_ALIGN;
        Stack { buf, start, frames }
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.frames
    }

    /// Size in bytes.
    pub fn size(&self) -> usize {
        self.frames as usize * STACK_FRAME_SIZE
    }

    /// Zeroes every byte.
    pub fn clear(&mut self) {
        self.bytes_mut().fill(0);
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

    /// The whole buffer as mutable bytes.
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        let size = self.size();
        &mut self.buf[self.start..self.start + size]
    }

    /// The region a function at `depth` may access: its own frame and its callers'.
    pub fn active_region(&mut self, depth: u32) -> Region<'_> {
        let keep = (depth as usize + 1).min(self.frames as usize) * STACK_FRAME_SIZE;
        let bytes = self.bytes_mut();
        let start = bytes.len() - keep;
        Region::new(&mut bytes[start..])
    }
}

/// The memory a program may touch during a run: the input region and the active stack.
#[derive(Debug)]
pub struct GuestMemory<'a> {
    /// The input memory (may be empty).
    pub input: Region<'a>,
    /// The active stack frames.
    pub stack: Region<'a>,
}

impl<'a> GuestMemory<'a> {
    /// The region and offset holding `[addr, addr + len)`, if one holds it whole.
    fn locate(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        if let Some(o) = self.input.offset_of(addr, len) {
            return Some(&mut self.input.bytes[o..o + len]);
        }
        if let Some(o) = self.stack.offset_of(addr, len) {
            return Some(&mut self.stack.bytes[o..o + len]);
        }
        None
    }

    /// Reads `len` bytes at `addr`, if they are accessible.
    pub fn read(&mut self, addr: u64, len: usize) -> Option<&[u8]> {
        self.locate(addr, len).map(|b| &*b)
    }

    /// The `len` bytes at `addr` for writing, if they are accessible.
    pub fn slice_mut(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
        self.locate(addr, len)
    }

    /// Loads a little-endian value of `size` bytes (1, 2, 4 or 8), zero-extended.
    pub fn load(&mut self, addr: u64, size: usize) -> Option<u64> {
        let b = self.locate(addr, size)?;
        let mut v = [0u8; 8];
        v[..size].copy_from_slice(b);
        Some(u64::from_le_bytes(v))
    }

    /// Stores the low `size` bytes of `value`, little-endian.
    pub fn store(&mut self, addr: u64, size: usize, value: u64) -> Option<()> {
        let b = self.locate(addr, size)?;
        b.copy_from_slice(&value.to_le_bytes()[..size]);
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn guest_memory_loads_and_stores_little_endian() {
        let mut input = [0u8; 8];
        let mut stack = Stack::new(1);
        let addr = input.as_ptr() as u64;
        let mut m = GuestMemory {
            input: Region::new(&mut input),
            stack: stack.active_region(0),
        };
        m.store(addr, 4, 0x1122_3344_5566).unwrap();
        assert_eq!(m.load(addr, 8), Some(0x3344_5566));
        assert_eq!(m.load(addr + 1, 8), None);
    }
}

//! Socket pointers' fields: which loads of `struct bpf_sock` (through a `sock` or a
//! `sock_common` pointer) and of `struct bpf_tcp_sock` the kernel allows (its
//! `bpf_sock_is_valid_access`, `bpf_sock_common_is_valid_access` and
//! `bpf_tcp_sock_is_valid_access`, from the UAPI layout in `/usr/include/linux/bpf.h`).
//!
//! bpfx keeps these structs in the UAPI layout, so an allowed load reads the bytes it names:
//! nothing is converted. No socket field is ever written.
//!
//! ```text
//! struct bpf_sock (80)                     struct bpf_tcp_sock (112)
//!   0 bound_dev_if  full only               0 .. 80  u32 snd_cwnd … sacked_out (20 fields)
//!   4 family  8 type  12 protocol           80  u64 bytes_received
//!  16 mark  20 priority      full only      88  u64 bytes_acked
//!  24 src_ip4  28 src_ip6[4]  44 src_port   96 .. 112  u32 dsack_dups … icsk_retransmits
//!  48 dst_port (be16) 50 (padding)
//!  52 dst_ip4  56 dst_ip6[4]  72 state  76 rx_queue_mapping
//! ```

use crate::config::SockKind;

/// Size of `struct bpf_sock`.
pub(crate) const BPF_SOCK_SIZE: i64 = 80;
/// Size of `struct bpf_tcp_sock`.
pub(crate) const BPF_TCP_SOCK_SIZE: i64 = 112;

/// Whether a load of `size` bytes at `off` of the struct a `kind` pointer points to is one
/// the kernel allows.
pub(crate) fn load_ok(kind: SockKind, off: i64, size: u32) -> bool {
    let size = i64::from(size);
    if off < 0 || size == 0 || off % size != 0 {
        return false;
    }
    match kind {
        SockKind::Tcp => {
            off < BPF_TCP_SOCK_SIZE
                && match off {
                    // bytes_received, bytes_acked
                    80 | 88 => size == 8,
                    _ => size == 4,
                }
        }
        // type, protocol's neighbours: `type` .. `priority` are full-socket fields.
        SockKind::Common if (8..24).contains(&off) => false,
        SockKind::Common | SockKind::Full => {
            if off >= BPF_SOCK_SIZE {
                return false;
            }
            let narrow = |field: i64| size <= field && (size & (size - 1)) == 0;
            match off {
                // family, type, protocol, src_ip4, src_ip6, src_port, dst_ip4, dst_ip6,
                // state, rx_queue_mapping: u32 fields, narrow loads allowed.
                4..=15 | 24..=47 | 52..=79 => narrow(4),
                // dst_port: 4 bytes at its offset, or 2 or 1 inside its 2 bytes.
                48..=49 => narrow(if size == 4 { 4 } else { 2 }),
                // The padding after dst_port.
                50..=51 => false,
                // bound_dev_if, mark, priority: whole.
                _ => size == 4,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_field_rules() {
        use SockKind::*;
        // Narrow loads of u32 fields, aligned; never 8 bytes.
        assert!(load_ok(Full, 4, 4) && load_ok(Full, 4, 2) && load_ok(Full, 5, 1));
        assert!(!load_ok(Full, 5, 2) && !load_ok(Full, 28, 8) && !load_ok(Full, 6, 4));
        // Whole-only fields.
        assert!(load_ok(Full, 0, 4) && !load_ok(Full, 0, 2) && !load_ok(Full, 16, 1));
        // dst_port and its padding.
        assert!(load_ok(Full, 48, 4) && load_ok(Full, 48, 2) && load_ok(Full, 49, 1));
        assert!(!load_ok(Full, 50, 2) && !load_ok(Full, 51, 1));
        // Beyond the struct, negative.
        assert!(!load_ok(Full, 80, 4) && !load_ok(Full, -4, 4) && load_ok(Full, 76, 4));
        // sock_common: type .. priority refused, the rest as a full socket.
        assert!(!load_ok(Common, 8, 4) && !load_ok(Common, 20, 4) && !load_ok(Common, 16, 4));
        assert!(load_ok(Common, 4, 4) && load_ok(Common, 72, 4) && load_ok(Common, 0, 4));
        // tcp_sock: u32 fields whole, the two u64 counters whole.
        assert!(load_ok(Tcp, 0, 4) && load_ok(Tcp, 80, 8) && load_ok(Tcp, 88, 8));
        assert!(!load_ok(Tcp, 80, 4) && !load_ok(Tcp, 0, 2) && !load_ok(Tcp, 112, 4));
        assert!(load_ok(Tcp, 108, 4) && !load_ok(Tcp, 96, 8));
    }
}

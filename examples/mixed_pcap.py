#!/usr/bin/env python3
"""Writes examples/mixed.pcap: a small, deterministic capture of mixed traffic for
`bpfx replay` (IPv4 and IPv6; TCP, UDP and ICMP; a VLAN tag; IPv4 fragments; ARP; a frame
cut short by the snaplen). Same output on every run: fixed addresses, ports and timestamps.

    python3 examples/mixed_pcap.py examples/mixed.pcap
"""
import struct
import sys

MAC = bytes.fromhex("020000000002") + bytes.fromhex("020000000001")


def eth(ethertype, payload, vlan=None):
    head = MAC
    if vlan is not None:
        head += struct.pack("!HH", 0x8100, vlan)
    return head + struct.pack("!H", ethertype) + payload


def ipv4(proto, payload, src=(10, 0, 0, 1), dst=(10, 0, 0, 2), frag=0, ident=1):
    return struct.pack("!BBHHHBBH4B4B", 0x45, 0, 20 + len(payload), ident, frag, 64, proto, 0,
                       *src, *dst) + payload


def ipv6(nh, payload):
    src = bytes.fromhex("fd000000000000000000000000000001")
    dst = bytes.fromhex("fd000000000000000000000000000002")
    return struct.pack("!IHBB", 0x60000000, len(payload), nh, 64) + src + dst + payload


def tcp(sport, dport, flags):
    return struct.pack("!HHIIBBHHH", sport, dport, 1, 0, 5 << 4, flags, 65535, 0, 0)


def udp(sport, dport, data=b""):
    return struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data


def icmp_echo():
    return struct.pack("!BBHHH", 8, 0, 0, 1, 1) + b"ping"


def frames():
    syn, synack = 0x02, 0x12
    out = []
    for i in range(8):
        out.append(eth(0x0800, ipv4(6, tcp(40000 + i, 80, syn))))
    out.append(eth(0x0800, ipv4(6, tcp(40100, 23, syn))))            # telnet: dropped
    out.append(eth(0x0800, ipv4(6, tcp(443, 40200, synack))))
    out.append(eth(0x0800, ipv4(17, udp(5353, 53, b"query"))))
    out.append(eth(0x0800, ipv4(1, icmp_echo())))
    out.append(eth(0x86DD, ipv6(6, tcp(40300, 443, syn))))
    out.append(eth(0x86DD, ipv6(17, udp(40400, 53))))
    out.append(eth(0x8100, b"", vlan=None)[:12] + struct.pack("!HH", 0x8100, 7)
               + struct.pack("!H", 0x0800) + ipv4(6, tcp(40500, 22, syn)))
    # A UDP datagram in two IPv4 fragments (more-fragments, then offset 8 bytes * 1).
    out.append(eth(0x0800, ipv4(17, udp(40600, 9999, b"x" * 8)[:16], frag=0x2000, ident=7)))
    out.append(eth(0x0800, ipv4(17, b"y" * 8, frag=1, ident=7)))
    out.append(eth(0x0806, bytes(28)))                                  # ARP
    return out


def main(path):
    snaplen = 96
    recs = frames()
    # A frame longer than the snaplen: recorded cut to 96 bytes of its 150.
    recs.append(eth(0x0800, ipv4(17, udp(40700, 4789, bytes(108)))))
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, snaplen, 1))
        for i, frame in enumerate(recs):
            data = frame[:snaplen]
            f.write(struct.pack("<IIII", 1_700_000_000 + i, 1000 * i, len(data), len(frame)))
            f.write(data)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "examples/mixed.pcap")

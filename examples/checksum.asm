# Internet checksum (RFC 1071) of the input memory, the way an IPv4 header's
# checksum is computed: sum the 16-bit big-endian words with end-around carry,
# then complement. An odd trailing byte is padded with zero.
#
# r1 = pointer to the memory, r2 = its length (the bpfx calling convention).
# Run: bpfx run examples/checksum.asm --mem examples/ipv4-header.bin
# The header ships with its checksum field (bytes 10-11) zeroed; the result,
# 0xb861, is the checksum that belongs there.
    mov %r0, 0              # running sum
    mov %r3, %r1            # cursor
    mov %r4, %r1
    add %r4, %r2            # end
loop:
    mov %r5, %r3
    add %r5, 2
    jgt %r5, %r4, tail      # fewer than two bytes left
    ldxh %r6, [%r3]
    be16 %r6                # network order
    add %r0, %r6
    mov %r3, %r5
    ja loop
tail:
    jge %r3, %r4, fold
    ldxb %r6, [%r3]
    lsh %r6, 8
    add %r0, %r6
fold:
    mov %r5, %r0
    rsh %r5, 16
    jeq %r5, 0, done
    and %r0, 0xffff
    add %r0, %r5
    ja fold
done:
    xor %r0, 0xffff
    exit

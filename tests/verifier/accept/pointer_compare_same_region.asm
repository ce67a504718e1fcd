# mem: 20
# rule: a comparison of two pointers into one region refines their offsets: with r3 at the
# end of the 20 bytes, r5 = r3 + 2 > r4 = input + 20 always, so the edge reading 2 more bytes
# is not taken (examples/checksum.asm's word loop, the kernel's find_good_pkt_pointers for
# two pointers of one region)
mov r0, 0
mov r3, r1
mov r4, r1
add r4, r2
loop:
mov r5, r3
add r5, 2
jgt r5, r4, tail
ldxh r6, [r3+0]
be16 r6
add r0, r6
mov r3, r5
ja loop
tail:
jge r3, r4, done
ldxb r6, [r3+0]
lsh r6, 8
add r0, r6
done:
exit

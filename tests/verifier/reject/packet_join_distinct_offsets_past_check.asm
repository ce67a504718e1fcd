# mode: strict
# context: packet
# rule: the unsafe twin of accept/packet_join_distinct_offsets.asm: the check proves 20 bytes
# past the joined pointer, the load reads bytes 17 to 20 (one past the end on either path)
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 18
jgt r4, r3, +11
ldxh r5, [r2+12]
mov r4, r2
add r4, 14
jne r5, 0x81, +1
add r4, 4
mov r6, r4
add r6, 20
jgt r6, r3, +3
ldxb r0, [r4+9]
ldxw r5, [r4+17]
exit
mov r0, 0
exit

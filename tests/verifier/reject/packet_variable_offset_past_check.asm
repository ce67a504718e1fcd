# mode: strict
# context: packet
# rule: the range a check proves for a packet id ends where the check did: 20 bytes past the
# variable start cover [r2+16] of 4 bytes, not [r2+17]
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 1
jgt r4, r3, +8
ldxb r5, [r2+0]
and r5, 60
add r2, r5
mov r6, r2
add r6, 20
jgt r6, r3, +2
ldxw r0, [r2+17]
exit
mov r0, 0
exit

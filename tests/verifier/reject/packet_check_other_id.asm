# mode: strict
# context: packet
# rule: two advances by the same variable make two packet ids: a check on one proves nothing
# about the other
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 1
jgt r4, r3, +10
ldxb r5, [r2+0]
and r5, 60
mov r6, r2
add r6, r5
add r2, r5
mov r7, r6
add r7, 20
jgt r7, r3, +2
ldxw r0, [r2+16]
exit
mov r0, 0
exit

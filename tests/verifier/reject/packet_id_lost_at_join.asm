# mode: strict
# context: packet
# rule: a join of data + V + 0 and data + V + 8 is no longer one shift of V: it leaves the
# packet id, so a check on r2 (data + V + 20) proves nothing about r6 + 16 (up to data + V + 28)
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 1
jgt r4, r3, +12
ldxb r5, [r2+0]
and r5, 60
add r2, r5
mov r6, r2
jeq r5, 4, +1
add r6, 8
mov r7, r2
add r7, 20
jgt r7, r3, +2
ldxw r0, [r6+16]
exit
mov r0, 0
exit

# mode: strict
# context: packet
# rule: a subprogram returns data + 30 on one path and data + 14 on the other; the return
# point runs once the first exit reaches it, and the second, joining later, relates the two
# under a fresh packet id (data + W + 14, W in [0, 16]): the return point must run again with
# that state, where r0 - 20 may lie before data, and the read is refused
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 40
jgt r4, r3, drop
ldxb r5, [r2+0]
mov r1, r2
mov r2, r5
call local f
ldxb r0, [r0-20]
exit
drop:
mov r0, 1
exit
f:
mov r0, r1
jeq r2, 7, +2
add r0, 30
exit
add r0, 14
exit

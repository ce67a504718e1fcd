# mode: strict
# context: packet
# rule: the access is on the edge where `data + 4 > data_end`
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 4
jle r4, r3, +2
ldxw r0, [r2+0]
exit
mov r0, 0
exit

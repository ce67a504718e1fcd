# context: packet
# rule: the data_end comparison may have data_end on the left, and a strict `<` proves one more byte
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 13
jle r3, r4, +2
ldxb r0, [r2+13]
exit
mov r0, 0
exit

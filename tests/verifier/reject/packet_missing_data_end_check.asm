# mode: strict
# context: packet
# rule: a packet access needs a data_end comparison before it (here it is after)
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
ldxb r0, [r2+0]
mov r4, r2
add r4, 1
jgt r4, r3, +0
exit

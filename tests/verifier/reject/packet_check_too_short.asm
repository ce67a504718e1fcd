# mode: strict
# context: packet
# rule: `data + 14 <= data_end` proves bytes 0..14, not byte 14
ldxdw r2, [r1+0]
ldxdw r3, [r1+8]
mov r4, r2
add r4, 14
jgt r4, r3, +2
ldxb r0, [r2+14]
exit
mov r0, 0
exit

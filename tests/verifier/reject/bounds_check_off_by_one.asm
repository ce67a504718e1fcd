# mode: strict
# rule: `index <= 57` then an 8-byte read at it may read byte 64 of 64
ldxdw r2, [r1+0]
jgt r2, 57, +3
add r1, r2
ldxdw r0, [r1+0]
exit
mov r0, 0
exit

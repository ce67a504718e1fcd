# mode: strict
# rule: an index of 0..=255 into 64 bytes of input may fall outside it
ldxb r2, [r1+0]
add r1, r2
ldxb r0, [r1+0]
exit

# rule: an index masked to 0..=63 into 64 bytes of input is proven
ldxb r2, [r1+0]
and r2, 63
add r1, r2
ldxb r0, [r1+0]
exit

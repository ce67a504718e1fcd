# rule: an input offset known to lie in a range (0 or 4 here) is proven when the whole range is
ldxb r3, [r1+0]
jeq r3, 0, +1
add r1, 4
ldxb r0, [r1+0]
exit

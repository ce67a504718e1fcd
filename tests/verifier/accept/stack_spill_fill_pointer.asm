# rule: pointers keep their type through an aligned 8-byte spill and fill
stxdw [r10-8], r1
mov r1, 0
ldxdw r2, [r10-8]
ldxb r0, [r2+3]
exit

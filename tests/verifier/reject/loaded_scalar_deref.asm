# mode: strict
# rule: only pointers to memory can be dereferenced (a value loaded from input is a scalar)
ldxdw r3, [r1+0]
ldxb r0, [r3+0]
exit

# mode: strict
# mem: 8
# rule: input accesses stay inside the declared input size
ldxdw r0, [r1+8]
exit

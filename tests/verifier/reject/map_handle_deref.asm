# mode: strict
# rule: a map handle cannot be dereferenced
lddw r1, map_fd(1)
ldxdw r0, [r1+0]
exit

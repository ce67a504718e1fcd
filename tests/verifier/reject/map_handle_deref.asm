# mode: strict
# rule: a map handle cannot be dereferenced
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
ldxdw r0, [r1+0]
exit

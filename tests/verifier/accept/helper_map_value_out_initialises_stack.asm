# rule: a value-out argument (map_pop_elem's) may point at uninitialised stack, which the helper initialises
# helper: 88:pop(map,value_out)->scalar
# map: idx:0,key=0,value=8
lddw r1, map_idx(0)
mov r2, r10
add r2, -8
call 88
ldxdw r0, [r10-8]
exit

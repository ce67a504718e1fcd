# mode: strict
# rule: an atomic writes too: not into a read-only map value
# map: idx:1,key=4,value=8,ro
lddw r1, map_idx_value(1, 0)
mov r2, 1
lock add [r1+0], r2
mov r0, 0
exit

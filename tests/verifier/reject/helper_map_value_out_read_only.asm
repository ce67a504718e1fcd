# rule: a value-out argument may not point into a read-only map value
# mode: strict
# helper: 88:pop(map,value_out)->scalar
# map: idx:0,key=0,value=8
# map: idx:1,key=4,value=8,ro
lddw r1, map_idx(0)
lddw r2, map_idx_value(1, 0)
call 88
mov r0, 0
exit

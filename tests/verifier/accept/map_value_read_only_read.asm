# rule: a read-only map value may be read directly and handed to a helper that only reads it
# helper: 10:print(ro_mem:r2,scalar)->scalar
# map: idx:1,key=4,value=8,ro
lddw r1, map_idx_value(1, 0)
ldxdw r6, [r1+0]
mov r2, 8
call 10
mov r0, r6
exit

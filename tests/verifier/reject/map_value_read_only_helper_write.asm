# mode: strict
# rule: a helper that may write its memory argument gets no read-only map value
# helper: 6:fill(mem:r2,scalar)->scalar
# map: idx:1,key=4,value=8,ro
lddw r1, map_idx_value(1, 0)
mov r2, 8
call 6
exit

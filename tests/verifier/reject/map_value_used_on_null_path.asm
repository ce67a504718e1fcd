# mode: strict
# rule: a map-value pointer must be null-checked before use (used on the path where it is 0)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
mov r2, r10
add r2, -8
stw [r10-8], 0
call 1
jne r0, 0, +2
ldxdw r0, [r0+0]
exit
mov r0, 0
exit

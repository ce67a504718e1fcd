# mode: strict
# rule: a map key must lie inside memory (4 bytes at fp-2 cross the top of the frame)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
# map: fd:1,key=4,value=16
lddw r1, map_fd(1)
stw [r10-8], 0
mov r2, r10
add r2, -2
call 1
mov r0, 0
exit

# rule: helper arguments follow the signature; a map handle cannot be forged from a scalar
# (both modes: only lddw creates map handles)
# helper: 1:map_lookup_elem(map,key)->map_value_or_null
mov r1, 1
mov r2, r10
add r2, -8
stw [r10-8], 0
call 1
mov r0, 0
exit

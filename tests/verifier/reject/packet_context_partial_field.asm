# context: packet
# rule: a context access must match one field: half of data_end (offset 12 through r1 + 8) is
# no field, in both modes, so no unconverted load reads the struct
mov r6, r1
add r6, 8
ldxw r0, [r6+4]
exit

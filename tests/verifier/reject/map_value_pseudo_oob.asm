# mode: strict
# rule: map-value accesses stay inside the value (lddw map_value with an offset)
# map: fd:1,key=4,value=16
lddw r1, map_value(1, 12)
ldxdw r0, [r1+0]
exit

# mode: strict
# rule: map-value accesses stay inside the value (lddw map_value with an offset)
lddw r1, map_value(1, 12)
ldxdw r0, [r1+0]
exit

# rule: lddw map_value gives a non-null map-value pointer
lddw r1, map_value(1, 8)
ldxdw r0, [r1+0]
exit

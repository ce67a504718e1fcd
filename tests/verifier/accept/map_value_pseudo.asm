# rule: lddw map_value gives a non-null map-value pointer
# map: fd:1,key=4,value=16
lddw r1, map_value(1, 8)
ldxdw r0, [r1+0]
exit

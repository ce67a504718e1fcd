# mode: strict
# rule: a value of a read-only map (.rodata) is never written: Strict rejects the store, Checked keeps its guard
# map: idx:1,key=4,value=8,ro
lddw r1, map_idx_value(1, 0)
ldxw r0, [r1+0]
stw [r1+4], 1
exit

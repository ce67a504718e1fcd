# mode: strict
# mem: 0
# rule: without input memory r1 is the scalar 0, not a pointer
ldxb r0, [r1+0]
exit

# mem: 16
# rule: constant-offset input accesses inside the declared size pass Strict mode (guarded)
ldxdw r0, [r1+8]
stw [r1+0], 1
exit

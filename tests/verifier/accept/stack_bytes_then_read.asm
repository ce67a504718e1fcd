# rule: stack bytes written piecewise are initialised when every byte was written
stw [r10-8], 1
stw [r10-4], 2
ldxdw r0, [r10-8]
stb [r10-9], 3
ldxb r3, [r10-9]
add r0, r3
exit

# mode: strict
# rule: stack accesses stay inside the frame (a 4-byte read crossing r10)
stw [r10-4], 1
ldxw r0, [r10-2]
exit

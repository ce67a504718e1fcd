# mode: strict
# rule: input accesses stay inside the input (before its start)
ldxb r0, [r1-1]
exit

# mode: strict
# mem: unknown
# rule: input accesses need a known input size
ldxb r0, [r1+0]
exit

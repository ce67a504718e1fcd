# mode: strict
# rule: only pointers to memory can be dereferenced (r2 holds the input length)
ldxb r0, [r2+0]
exit

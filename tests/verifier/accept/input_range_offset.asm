# mode: strict
# rule: input accesses need a known offset (two paths, two offsets)
ldxb r3, [r1+0]
jeq r3, 0, +1
add r1, 4
ldxb r0, [r1+0]
exit

# mode: strict
# rule: r0 must be initialised at exit on every path
ldxb r3, [r1+0]
jeq r3, 0, +1
mov r0, 1
exit

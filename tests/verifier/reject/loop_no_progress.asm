# mode: strict
# rule: a loop whose state at the head repeats may run forever
ldxb r2, [r1+0]
mov r0, 0
l:
jne r2, 0, l
exit

# mode: strict
# rule: an unsigned upper bound says nothing about a signed index's lower end
ldxdw r2, [r1+0]
jsgt r2, 56, +3
add r1, r2
ldxdw r0, [r1+0]
exit
mov r0, 0
exit

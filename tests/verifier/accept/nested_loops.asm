# rule: nested counted loops terminate: 4 x 4 iterations explored
mov r0, 0
mov r2, 0
outer:
mov r3, 0
inner:
add r0, r3
add r3, 1
jlt r3, 4, inner
add r2, 1
jlt r2, 4, outer
exit

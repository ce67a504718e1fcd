# rule: a helper's memory argument of known size initialises the stack it covers
# helper: 6:fill(mem:r2,scalar)->scalar
mov r1, r10
add r1, -16
mov r2, 16
call 6
ldxdw r0, [r10-16]
exit

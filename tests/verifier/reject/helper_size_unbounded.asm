# mode: strict
# rule: a helper's size argument needs an upper bound
# helper: 6:fill(mem:r2,scalar)->scalar
ldxdw r2, [r1+0]
mov r1, r10
add r1, -16
call 6
exit

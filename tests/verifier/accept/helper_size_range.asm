# rule: a helper's size argument known only as a range is accepted when its maximum fits; only its minimum counts as written
# helper: 6:fill(mem:r2,scalar)->scalar
ldxb r2, [r1+0]
and r2, 15
add r2, 1
mov r1, r10
add r1, -16
call 6
ldxb r0, [r10-16]
exit

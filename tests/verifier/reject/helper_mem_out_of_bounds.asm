# mode: strict
# rule: a helper's memory argument must cover the size it is given (16 bytes at fp-8)
# helper: 6:fill(mem:r2,scalar)->scalar
mov r1, r10
add r1, -8
mov r2, 16
call 6
exit

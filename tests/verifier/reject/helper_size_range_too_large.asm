# mode: strict
# rule: a helper's size argument known as a range is checked at its maximum (r2 may be 255, the buffer at fp-16 has 16 bytes)
# helper: 6:fill(mem:r2,scalar)->scalar
ldxb r2, [r1+0]
mov r1, r10
add r1, -16
call 6
exit

# mode: strict
# rule: a size of -1 is 2^64 - 1 bytes: no bound that fits any memory, even as a constant
# helper: 6:fill(mem:r2,scalar)->scalar
# map: fd:1,key=4,value=16
lddw r1, map_value(1, 0)
mov r2, -1
call 6
exit

# rule: the callback argument must be a function of the program (lddw func), not a number
# helper: 181:loop(scalar,callback_loop,callback_ctx,scalar)->scalar
mov r1, 4
mov r2, 5
mov r3, 0
mov r4, 0
call 181
exit

# rule: a callback must return 0 or 1 (the kernel's range check), in both modes
# helper: 181:loop(scalar,callback_loop,callback_ctx,scalar)->scalar
mov r1, 4
lddw r2, func(cb)
mov r3, 0
mov r4, 0
call 181
exit
cb:
mov r0, 2
exit

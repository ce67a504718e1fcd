# rule: Strict mode wants a stack pointer or NULL as the callback's context (the kernel's ARG_PTR_TO_STACK_OR_NULL)
# mode: strict
# helper: 181:loop(scalar,callback_loop,callback_ctx,scalar)->scalar
mov r3, r1
mov r1, 4
lddw r2, func(cb)
mov r4, 0
call 181
mov r0, 0
exit
cb:
ldxb r0, [r2+0]
mov r0, 0
exit

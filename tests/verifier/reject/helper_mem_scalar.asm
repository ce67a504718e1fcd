# mode: strict
# rule: helper arguments follow the signature (a scalar where memory is expected)
# helper: 7:buffer(stack_or_mem)->scalar
mov r1, 0
call 7
exit

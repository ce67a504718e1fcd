# mode: strict
# rule: helper arguments follow the signature (a pointer where a scalar is expected)
# helper: 9:scalar_arg(scalar)->scalar
mov r1, r10
call 9
exit

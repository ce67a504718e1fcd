# mode: strict
# rule: helper arguments follow the signature (a scalar where memory is expected)
mov r1, 0
call 7
exit

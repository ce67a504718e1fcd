# rule: callx with a known registered helper id follows that helper's signature
# helper: 5:echo(any)->scalar
mov r1, 3
mov r2, 5
call r2
exit

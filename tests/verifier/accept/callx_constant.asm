# rule: callx with a known registered helper id follows that helper's signature
mov r1, 3
mov r2, 5
call r2
exit

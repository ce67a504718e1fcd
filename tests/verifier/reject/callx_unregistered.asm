# mode: strict
# rule: callx calls a registered helper
mov r2, 77
call r2
exit

# mode: strict
# rule: a callee may return with r0 unset (as in the kernel), but a caller reading r0 then reads an uninitialised register (here the main program's exit)
mov r0, 0
call local f
exit
f:
exit

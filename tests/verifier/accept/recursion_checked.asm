# mode: checked
# rule: Checked mode accepts recursion: the frame limit traps at run time
mov r0, 0
call local f
exit
f:
call local f
exit

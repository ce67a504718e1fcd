# rule: a local call lands on the start of a function; calling into the middle of one
# splits it, and the code before the target falls through into it
call local f
exit
f:
mov r0, 1
g:
mov r0, 2
exit
h:
call local g
exit

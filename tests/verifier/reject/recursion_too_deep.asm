# mode: strict
# rule: local calls nest at most max_frames frames (recursion never ends)
mov r0, 0
call local f
exit
f:
call local f
exit

# mode: strict
# frames: 2
# rule: local calls nest at most max_frames frames
mov r0, 0
call local f
exit
f:
call local g
exit
g:
exit

# mode: strict
# rule: sign-extending a pointer is prohibited
movsx3264 r3, r1
mov r0, 0
exit

# mode: strict
# mem: 64
# rule: the unsafe twin of accept/loop_rotated_head_in_middle.asm: without the counter and the
# cursor the walk may repeat forever (byte 1 is 0), and the rejection names the loop's head
mov r3, r1
ldxb r0, [r3+0]
ja test
body:
jeq r0, 7, done
ldxb r0, [r3+1]
test:
and r0, 255
jeq r0, 0, body
jsgt r0, 59, body
done:
exit

build/san-address,undefined/obj/common/codec.o: common/codec.c \
 common/common.h
common/common.h:

build/obj/common/codec.o: common/codec.c common/common.h
common/common.h:

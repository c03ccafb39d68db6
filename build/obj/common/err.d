build/obj/common/err.o: common/err.c common/common.h
common/common.h:

build/san-address,undefined/tests/common_codec: tests/unit/common_codec.c \
 common/common.h tests/unit/test.h
common/common.h:
tests/unit/test.h:

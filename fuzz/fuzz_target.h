/* The libFuzzer entry point shared by the daemons fuzz targets and the corpus replayer. */
#ifndef MESHRT_FUZZ_TARGET_H
#define MESHRT_FUZZ_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* Run one input through the target; aborts on a broken invariant. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif

#include "FuzzDriver.h"

// Defined by libFuzzer (linked through -sanitize=fuzzer).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*cb)(const uint8_t *, size_t));

int soma_fuzz_run(int argc, char **argv, int (*test_one_input)(const uint8_t *, size_t)) {
  return LLVMFuzzerRunDriver(&argc, &argv, test_one_input);
}

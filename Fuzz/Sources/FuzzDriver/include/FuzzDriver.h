#ifndef SOMA_FUZZ_DRIVER_H
#define SOMA_FUZZ_DRIVER_H
#include <stddef.h>
#include <stdint.h>

// Runs libFuzzer's driver (command line, corpus, mutation loop) on `test_one_input`.
//
// SwiftPM links an executable's `main` to the Swift symbol `<Module>_main`, so libFuzzer's own
// `main` is never pulled in; each target defines `<Module>_main` and calls this instead.
int soma_fuzz_run(int argc, char **argv, int (*test_one_input)(const uint8_t *, size_t));

#endif

// Sanitizer defaults of every fuzz target, so that a run by hand behaves like the ctest run: any
// UBSan report stops the run (libFuzzer then saves the input), except the suppressed ones.
#ifndef SLUICE_FUZZ_UBSAN_SUPPRESSIONS
#error "SLUICE_FUZZ_UBSAN_SUPPRESSIONS must name fuzz/ubsan.supp"
#endif

extern "C" const char* __ubsan_default_options() {
  return "print_stacktrace=1:halt_on_error=1:suppressions=" SLUICE_FUZZ_UBSAN_SUPPRESSIONS;
}

// hello-flow: a Sluice flow type in a few dozen lines, built out of tree against the installed SDK.
#include "hello_flow.hpp"

SLUICE_PLUGIN("hello-flow", "1.0.0", Hello)

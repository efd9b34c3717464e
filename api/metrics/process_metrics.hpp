// The standard process_* series of the Prometheus clients (memory, file descriptors, threads,
// start time, CPU), read from Linux's /proc/self, so that a Sluice server is graphed and alerted
// on like any other Prometheus target.
#pragma once

#include <string>

namespace sluice::metrics {

/// Appends the families process_resident_memory_bytes, process_virtual_memory_bytes,
/// process_open_fds, process_max_fds, process_threads, process_start_time_seconds and
/// process_cpu_seconds_total (HELP, TYPE, one sample each). A family whose source cannot be
/// read (no /proc, say) is left out rather than failing the scrape.
void writeProcessMetrics(std::string& out);

}  // namespace sluice::metrics

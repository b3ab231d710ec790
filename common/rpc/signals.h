// Clean shutdown on SIGTERM/SIGINT.
#pragma once

namespace vpn::rpc {

// Blocks SIGTERM and SIGINT in the calling thread and every thread it starts
// afterwards. Call first thing in main().
void BlockTerminationSignals();

// Waits for SIGTERM or SIGINT and returns its number.
int WaitForTerminationSignal();

}  // namespace vpn::rpc

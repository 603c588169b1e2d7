#pragma once
// `berth sim-agents` (sim_main.cc): simulated container instances for scale tests and benchmarks.

#include <CLI/CLI.hpp>
#include <functional>

namespace berth::apps {

/// Adds the subcommand; `run` is set to its entry point when chosen.
void add_sim_command(CLI::App& app, std::function<int()>& run);

}  // namespace berth::apps

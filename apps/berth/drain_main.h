#pragma once
// `berth drain`: see drain_main.cc.

#include <CLI/CLI.hpp>
#include <functional>

namespace berth::apps {
void add_drain_command(CLI::App& app, std::function<int()>& run);
}  // namespace berth::apps

// The life cycle of one model process. Every change goes through ModelProcess::set_state(),
// which checks this table; there is no way to force a state.
//
//   Stopped ──start──▶ Starting ──ready──▶ Ready
//      ▲                 │  │                │
//      │            exit │  └──stop/timeout──┼──▶ Stopping ──reaped──▶ Stopped | Failed
//      │                 ▼                   │ exit
//   (start again) ◀── Failed ◀───────────────┘
#pragma once

#include <cstdint>

namespace ls::supervisor {

enum class ProcessState : uint8_t { Stopped, Starting, Ready, Stopping, Failed };

constexpr const char* to_string(ProcessState s) {
    switch (s) {
    case ProcessState::Stopped:
        return "stopped";
    case ProcessState::Starting:
        return "starting";
    case ProcessState::Ready:
        return "ready";
    case ProcessState::Stopping:
        return "stopping";
    case ProcessState::Failed:
        return "failed";
    }
    return "?";
}

constexpr bool transition_allowed(ProcessState from, ProcessState to) {
    using S = ProcessState;
    switch (from) {
    case S::Stopped:
        return to == S::Starting;
    case S::Failed:
        return to == S::Starting || to == S::Stopped; // stopped: an unload acknowledged it
    case S::Starting:
        return to == S::Ready || to == S::Stopping || to == S::Failed;
    case S::Ready:
        return to == S::Stopping || to == S::Failed;
    case S::Stopping:
        return to == S::Stopped || to == S::Failed;
    }
    return false;
}

// A process that is running (or about to) holds a port, a pid and a place in its group.
constexpr bool is_active(ProcessState s) {
    return s == ProcessState::Starting || s == ProcessState::Ready || s == ProcessState::Stopping;
}

} // namespace ls::supervisor

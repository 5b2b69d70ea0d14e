// fork+exec of an upstream command: its own process group, PR_SET_PDEATHSIG, every other fd
// closed on exec, stdin from /dev/null, stdout+stderr into one pipe, and an exec failure
// reported through a close-on-exec pipe (as h2o_spawnp does) instead of an exit status.
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "util/result.h"
#include "util/unique_fd.h"

namespace ls::supervisor {

struct SpawnRequest {
    std::vector<std::string> argv;
    std::vector<std::string> env; // "NAME=value": set on top of the inherited environment
    int output_fd = -1;           // becomes stdout and stderr; -1 keeps the daemon's
    bool own_process_group = true;
    // The child waits before exec until release() is written (so the parent can move it
    // into its cgroup first).
    bool hold = false;
};

struct Spawned {
    pid_t pid = -1;
    // Readable end of the exec-status pipe: EOF means exec succeeded; an int (errno) means
    // it failed. Non-blocking.
    UniqueFd exec_status;
    UniqueFd release; // with `hold`: write one byte (or close) to let the child exec
};

Result<Spawned> spawn_process(const SpawnRequest& req);

// Reads the exec-status pipe after it became readable: returns 0 when exec succeeded,
// an errno when it failed, -1 when no verdict is available yet.
int read_exec_status(int fd);

} // namespace ls::supervisor

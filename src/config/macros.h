// Macro expansion: ${name} from user macros (global + per model, a macro may use those declared
// earlier), ${env.NAME}, ${MODEL_ID}. ${PORT} and ${PID} are left for run time.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "util/result.h"

namespace ls::config {

struct MacroSet {
    // In declaration order; later entries may reference earlier ones.
    std::vector<std::pair<std::string, std::string>> entries;
};

struct MacroContext {
    const MacroSet* global = nullptr;
    const MacroSet* model = nullptr; // overrides global names
    std::string model_id;            // empty: ${MODEL_ID} is not available
    bool allow_pid = false;          // ${PID} may remain (cmdStop)
    // Declaration time (a macro's own value): ${PORT}, ${PID} and ${MODEL_ID} stay literal, to be
    // resolved where the macro is used.
    bool keep_reserved = false;
};

// True when `name` may be a macro name: ^[a-zA-Z0-9_-]+$ and shorter than 64 characters.
bool is_valid_macro_name(const std::string& name);

// Declares the macro `name` at the end of `target` (which is ctx.global or ctx.model): checks the
// name (pattern, reserved PORT/PID/MODEL_ID, not yet in `target`) and stores `value` expanded with
// the macros visible in `ctx` now, i.e. those declared before it. A model macro may thus use the
// global macro it overrides. Errors: "invalid macro name 'x'", "macro name 'PORT' is reserved",
// "macro 'x' is already defined", "macro 'x' references unknown macro '${y}'", "macro 'x': ...".
Result<void> declare_macro(MacroSet& target, const std::string& name, const std::string& value,
                           const MacroContext& ctx);

// True when `text` is exactly one macro reference and nothing else: "${name}", "${env.NAME}" or
// a reserved "${PORT}"/"${PID}"/"${MODEL_ID}". Such a whole value keeps the type of what it
// expands to (a number or a boolean) where values are typed, e.g. in `metadata`.
bool is_single_reference(const std::string& text);

// Expands every macro in `text`. Unknown names give an Error "unknown macro '${x}'".
// ${PORT} (and ${PID} when allowed) remain literally in the output.
Result<std::string> expand_macros(const std::string& text, const MacroContext& ctx);

// Replaces every literal ${NAME} in `text` with `value` (run-time substitution).
std::string substitute(std::string text, const std::string& name, const std::string& value);

} // namespace ls::config

// libFuzzer harness: macro declaration and expansion (src/config/macros.h) on their own,
// without YAML around them: ${name}, ${env.NAME}, ${PORT}, ${PID}, ${MODEL_ID}, macros that
// use earlier ones, model macros over global ones.
//
// Input (FuzzedDataProvider): flags, the model id, up to 8 global and 8 model macros (name,
// value), then the text to expand.
//
// Properties: no sanitizer report, no runaway time or memory; a text without "${" expands to
// itself; a name is_valid_macro_name() refuses is never declared; expansion is deterministic;
// substitute() leaves no token of the name when the value does not contain it.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "config/macros.h"
#include "fuzz_common.h"

using ls::config::MacroContext;
using ls::config::MacroSet;

namespace {

void declare_some(FuzzedDataProvider& in, MacroSet& target, const MacroContext& ctx) {
    const int n = in.ConsumeIntegralInRange(0, 8);
    for (int i = 0; i < n; ++i) {
        const std::string name = in.ConsumeRandomLengthString(16);
        const std::string value = in.ConsumeRandomLengthString(128);
        const size_t before = target.entries.size();
        auto r = ls::config::declare_macro(target, name, value, ctx);
        if (!ls::config::is_valid_macro_name(name)) FUZZ_CHECK(!r.ok());
        FUZZ_CHECK(target.entries.size() == before + (r.ok() ? 1 : 0));
        if (!r.ok()) FUZZ_CHECK(!r.error().message.empty());
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    setenv("LS_FUZZ_VALUE", "value", 1);
    setenv("LS_FUZZ_NEWLINE", "a\nb", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider in(data, size);
    MacroSet global, model;
    MacroContext ctx;
    ctx.allow_pid = in.ConsumeBool();
    ctx.model_id = in.ConsumeRandomLengthString(24);

    MacroContext global_ctx;
    global_ctx.global = &global;
    declare_some(in, global, global_ctx);
    MacroContext model_ctx;
    model_ctx.global = &global;
    model_ctx.model = &model;
    model_ctx.model_id = ctx.model_id;
    declare_some(in, model, model_ctx);

    ctx.global = &global;
    ctx.model = in.ConsumeBool() ? &model : nullptr;
    const std::string text = in.ConsumeRemainingBytesAsString();

    auto a = ls::config::expand_macros(text, ctx);
    auto b = ls::config::expand_macros(text, ctx);
    FUZZ_CHECK(a.ok() == b.ok());
    if (a.ok()) {
        FUZZ_CHECK(a.value() == b.value());
        if (text.find("${") == std::string::npos) FUZZ_CHECK(a.value() == text);
    } else {
        FUZZ_CHECK(!a.error().message.empty());
        FUZZ_CHECK(a.error().message == b.error().message);
    }
    (void)ls::config::is_single_reference(text);

    const std::string port = "5800";
    const std::string substituted = ls::config::substitute(text, "PORT", port);
    FUZZ_CHECK(substituted.find("${PORT}") == std::string::npos);
    return 0;
}

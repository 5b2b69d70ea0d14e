// libFuzzer harness: configuration loading (src/config/config.h): libyaml, the merge of
// several files (--config-dir), every section's decoder, macro expansion and validation.
//
// Input: YAML text. A line "=====" separates files: one file goes through
// load_config_from_string(), several through load_config_texts() (the merge).
//
// Properties: no sanitizer report; loading is deterministic (the same text gives the same
// outcome twice); a configuration that loads keeps its documented promises: every model has a
// group (with the group router), every alias resolves to a model that exists, every id resolves to
// itself; an error has a message.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"
#include "fuzz_common.h"

using ls::config::Config;

namespace {

std::vector<std::pair<std::string, std::string>> files_of(std::string_view text) {
    static constexpr std::string_view kSeparator = "\n=====\n";
    std::vector<std::pair<std::string, std::string>> files;
    while (files.size() < 3) {
        const size_t at = text.find(kSeparator);
        if (at == std::string_view::npos) break;
        files.emplace_back(std::string(1, static_cast<char>('a' + files.size())) + ".yaml",
                           std::string(text.substr(0, at + 1)));
        text.remove_prefix(at + kSeparator.size());
    }
    files.emplace_back(std::string(1, static_cast<char>('a' + files.size())) + ".yaml",
                       std::string(text));
    return files;
}

ls::Result<Config> load(const std::vector<std::pair<std::string, std::string>>& files) {
    if (files.size() == 1) return ls::config::load_config_from_string(files[0].second, "a.yaml");
    return ls::config::load_config_texts(files);
}

void check_config(const Config& cfg) {
    for (const auto& [id, model] : cfg.models) {
        // Groups exist with the group router only (the matrix has none).
        if (cfg.routing.router == ls::config::RouterKind::Group)
            FUZZ_CHECK(cfg.group_of(id) != nullptr);
        FUZZ_CHECK(cfg.resolve(id) == &model);
    }
    for (const auto& [alias, id] : cfg.aliases) {
        FUZZ_CHECK(cfg.models.count(id) == 1);
        FUZZ_CHECK(cfg.resolve(alias) != nullptr);
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    // ${env.NAME} in configurations: one set, one with a newline (refused), the rest unset.
    setenv("LS_FUZZ_VALUE", "value", 1);
    setenv("LS_FUZZ_NEWLINE", "a\nb", 1);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto files = files_of(text);

    auto first = load(files);
    auto second = load(files);
    FUZZ_CHECK(first.ok() == second.ok());
    if (!first.ok()) {
        FUZZ_CHECK(!first.error().message.empty());
        FUZZ_CHECK(first.error().message == second.error().message);
        return 0;
    }
    FUZZ_CHECK(first.value().warnings.size() == second.value().warnings.size());
    FUZZ_CHECK(first.value().models.size() == second.value().models.size());
    check_config(first.value());
    return 0;
}

#include "util/regex_list.h"

#include <regex.h>

namespace ls {

Result<std::shared_ptr<const RegexList>> RegexList::compile(
    const std::vector<std::string>& patterns) {
    std::shared_ptr<RegexList> list(new RegexList());
    for (const auto& p : patterns) {
        auto* re = new regex_t;
        if (int rc = regcomp(re, p.c_str(), REG_EXTENDED | REG_NOSUB); rc != 0) {
            char why[256];
            regerror(rc, re, why, sizeof why);
            delete re;
            return make_error("invalid regular expression \"" + p + "\": " + why);
        }
        list->compiled_.push_back(re);
        list->patterns_.push_back(p);
    }
    return std::shared_ptr<const RegexList>(std::move(list));
}

RegexList::~RegexList() {
    for (void* p : compiled_) {
        auto* re = static_cast<regex_t*>(p);
        regfree(re);
        delete re;
    }
}

bool RegexList::matches(std::string_view text) const {
    const std::string s(text); // regexec wants a terminated string
    for (void* p : compiled_)
        if (regexec(static_cast<regex_t*>(p), s.c_str(), 0, nullptr, 0) == 0) return true;
    return false;
}

} // namespace ls

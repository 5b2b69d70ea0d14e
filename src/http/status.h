#pragma once

namespace ls::http {
// Reason phrase for a status code ("Unknown" for codes we never send).
const char* status_text(int status);
} // namespace ls::http

-- wrk script: keep-alive POSTs of a small (~200-byte) non-streaming chat body, or with
-- BENCH_PROMPT_KB=N a user message of about N KiB (lines of 1000 characters, each ending in
-- an escaped newline, as prompts have them).
-- The model id comes from the BENCH_MODEL environment variable (default "bench").
local model = os.getenv("BENCH_MODEL") or "bench"
local prompt_kb = tonumber(os.getenv("BENCH_PROMPT_KB") or "0")
local padding = "Padding to about two hundred bytes."
if prompt_kb > 0 then
  padding = string.rep(string.rep("x", 1000) .. "\\n", math.floor(prompt_kb * 1024 / 1002))
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"' .. model .. '","messages":[{"role":"system","content":"You are terse."},' ..
           '{"role":"user","content":"Say hello in one word, please. ' .. padding .. '"}],' ..
           '"max_tokens":16,"temperature":0,"stream":false}'

-- One machine-readable line: requests, duration (us), p50/p90/p99/max latency (us), errors, non-2xx.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d " ..
                         "err_connect=%d err_read=%d err_write=%d err_timeout=%d non2xx=%d body_bytes=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, e.connect, e.read, e.write, e.timeout, e.status, #wrk.body))
end

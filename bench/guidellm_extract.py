"""Prints `req/s out-tok/s ttft-mean-ms itl-mean-ms completed` from a guidellm
0.8 JSON result. Rates are taken over all requests' own start-to-end span, as
guidellm's windowed counts can leave out requests finishing at the edge."""
import json
import sys

b = json.load(open(sys.argv[1]))["benchmarks"][0]
m = b["metrics"]
rs = b["requests"]["successful"]
t0 = min(r["request_start_time"] for r in rs)
t1 = max(r["request_end_time"] for r in rs)
span = t1 - t0
print(
    len(rs) / span,
    sum(r["output_tokens"] for r in rs) / span,
    m["time_to_first_token_ms"]["successful"]["mean"],
    m["inter_token_latency_ms"]["successful"]["mean"],
    len(rs),
)

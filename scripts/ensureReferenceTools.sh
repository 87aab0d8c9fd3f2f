#!/usr/bin/env bash
# Makes sure Debian's PyTorch, ONNX and SentencePiece are installed for /usr/bin/python3: the tests make their tiny
# reference models with scripts/makeFamilyModels.py and reference tokenizers with scripts/makeSentencePieceTokenizers.py
# (PyPI is not used). Installs them with apt-get when run as root.
set -euo pipefail
if /usr/bin/python3 -c 'import torch, onnx, sentencepiece' 2>/dev/null; then exit 0; fi
packages='python3-torch python3-onnx python3-sentencepiece libopenblas0-pthread'
if [ "$(id -u)" = 0 ]; then
  echo "installing the reference tools for the tests: apt-get install $packages" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
else
  echo "the tests need Debian's PyTorch, ONNX and SentencePiece: sudo apt-get install $packages" >&2
  exit 1
fi

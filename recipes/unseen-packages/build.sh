#!/usr/bin/env bash
# Build the unseen-package evaluation set (the headline quality figures: code the model never saw).
# Run from the repository root inside the virtual environment. Same hygiene rules as a training corpus
# (generated, vendored, minified and duplicate files left out); every file is held out, whichever split
# `corpus build` files it under. `codelstm eval --data data/unseen` reads its val split (147 files,
# 3.2 MB); `bench/context.py` draws files spread over the packages from both splits.
set -euo pipefail
codelstm corpus build recipes/unseen-packages/packages.txt -o data/unseen --lang python

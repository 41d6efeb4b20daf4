# codelstm service image (CPU torch by default; the trainer builds it with a CUDA wheel index).
FROM python:3.11-slim

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CODELSTM_HOST=0.0.0.0 \
    CODELSTM_PORT=8000 \
    CODELSTM_MODELS_DIR=/models

RUN apt-get update \
    && apt-get install -y --no-install-recommends git=1:2.* curl=7.* \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 codelstm
WORKDIR /app

COPY pyproject.toml README.md ./
COPY codelstm ./codelstm
RUN pip install --extra-index-url "${TORCH_INDEX_URL}" "torch==2.13.0" \
    && pip install .

USER 10001
# The search's and the context models' step kernels (numba) compiled into the image, so no container compiles
# them again
ENV NUMBA_CACHE_DIR=/home/codelstm/.cache/numba
RUN python -c "from codelstm.model import search_kernels; from codelstm.model.mixer import MixerWeights, \
compile_kernels; search_kernels.compile_kernels(); compile_kernels(MixerWeights())"
VOLUME ["/models"]
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["curl", "-fsS", "http://127.0.0.1:8000/readyz"]
CMD ["codelstm", "serve"]

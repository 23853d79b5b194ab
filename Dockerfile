# Liaison service image. Build: docker build -t liaison .
# Run:   docker run -p 8000:8000 -v liaison-data:/data liaison
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY . .
# The locked, hash-checked versions (make lock), then Liaison itself. All ship manylinux
# wheels for CPython 3.11, so no compiler is needed.
RUN pip install --require-hashes -r requirements.lock \
    && pip install --no-deps . \
    && rm -rf build ./*.egg-info

# Unprivileged runtime user; /data must be created and chowned *before* the
# VOLUME instruction so that fresh named volumes inherit the ownership.
RUN groupadd --system --gid 10001 liaison \
    && useradd --system --uid 10001 --gid liaison --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin liaison \
    && mkdir -p /data \
    && chown liaison:liaison /data

ENV LIAISON_DATABASE_URL=sqlite+aiosqlite:////data/liaison.db
VOLUME ["/data"]
# Numeric so that runAsNonRoot-style checks can verify it without /etc/passwd.
USER 10001:10001
EXPOSE 8000
CMD ["liaison", "serve", "--host", "0.0.0.0", "--port", "8000"]

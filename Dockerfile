# One image for every Tickflow process; the command picks what runs:
#   tickflow run --stages candles --health-port 8081   (a worker; one Deployment per stage)
#   tickflow gateway                                    (the HTTP gateway)
#   tickflow bootstrap                                  (streams and buckets; the chart's hook Job)
# NATS is not in the image: the Helm chart brings it (or points at an existing one).
# The sources are TypeScript run through tsx (a runtime dependency), so there is no build step.

# --- deps: production dependencies only ---------------------------------------------------------
FROM node:20-bookworm-slim AS deps
WORKDIR /app
# onnxruntime-node would download a CUDA build at install time; its npm package already carries
# the CPU binaries the predictor uses.
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# --- runtime ------------------------------------------------------------------------------------
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    # Local state and tsx's compile cache go to /tmp: the chart mounts an emptyDir there and keeps
    # the root filesystem read-only.
    TICKFLOW_DATA_DIR=/tmp/tickflow \
    TMPDIR=/tmp
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
# Everything else the .dockerignore lets through: package.json, bin/, protocol/, supervisor/,
# actors/, gateway/, data/ (recorded trades for the offline replay).
COPY . .
RUN ln -s /app/bin/tickflow.js /usr/local/bin/tickflow && chmod 0755 /app/bin/tickflow.js
# The image's `node` user, by number, so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000
ENTRYPOINT ["tickflow"]
CMD ["--help"]

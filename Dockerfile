# One image for every Tickflow process: `tickflow run --stages …`, `tickflow up --nats …`, the gateway.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY protocol ./protocol
COPY supervisor ./supervisor
COPY actors ./actors
COPY bin ./bin
COPY data ./data
USER node
ENTRYPOINT ["node", "bin/tickflow.js"]
CMD ["--help"]

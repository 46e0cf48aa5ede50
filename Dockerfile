# syntax=docker/dockerfile:1
# fastify-mcp-gateway: build the TypeScript, then run it on a slim Node 20 image as the unprivileged `node` user.
#   docker build -t fastify-mcp-gateway .
#   docker run --rm --init -p 127.0.0.1:3000:3000 fastify-mcp-gateway
ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY plugins ./plugins
COPY routes ./routes
COPY schemas ./schemas
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# The two demo servers config/gateway.json launches over stdio, at the versions package-lock.json pins.
ARG SERVER_EVERYTHING_VERSION=2026.8.31
ARG SERVER_MEMORY_VERSION=2026.8.31
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
# The demo servers are devDependencies, which `--omit=dev` leaves out even when named on the command line, so they
# get their own prefix and are linked where the config expects them (node_modules/.bin/mcp-server-*).
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm install --prefix /opt/mcp-demo --omit=dev --no-audit --no-fund \
      "@modelcontextprotocol/server-everything@${SERVER_EVERYTHING_VERSION}" \
      "@modelcontextprotocol/server-memory@${SERVER_MEMORY_VERSION}" \
 && mkdir -p node_modules/.bin \
 && ln -s /opt/mcp-demo/node_modules/.bin/mcp-server-everything /opt/mcp-demo/node_modules/.bin/mcp-server-memory node_modules/.bin/ \
 && npm cache clean --force \
 && mkdir -p /data \
 && chown node:node /data
COPY --from=build /app/dist ./dist
COPY config ./config
COPY dashboard ./dashboard

# GATEWAY_CONFIG rather than --config in CMD: the --config flag would win over a GATEWAY_CONFIG set at `docker run`.
ENV HOST=0.0.0.0 \
    PORT=3000 \
    GATEWAY_CONFIG=config/gateway.json \
    MEMORY_FILE_PATH=/data/memory.jsonl
USER node
EXPOSE 3000
VOLUME ["/data"]
# Liveness: the process answers (/health/live). Not /health: that is 503 while no upstream is up, and restarting a
# gateway whose upstreams are down (or not registered yet) would not help. Slim images have no curl: Node's fetch.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/health/live').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/cli.js"]

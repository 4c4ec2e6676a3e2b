# qrfleet daemon image. Build from the repository root:
#   docker build -t qrfleet .
# It runs what README "Running it for real" says: `npm ci` and `npm run build` (build stage), then
# `npm start` (runtime stage), which runs the build and does not build again. The runtime stage holds
# only what running needs, owned by root and read-only for the `node` user: the compiled daemon
# (dist/src, dist/workers, with the generated Prisma client compiled in), the production
# dependencies, package.json, and the migrations the daemon applies at start. No TypeScript
# compiler, no Prisma CLI, no sources.

FROM node:20-slim AS build
WORKDIR /app
# Dependencies first, so a change to the sources does not reinstall them. postinstall runs
# `prisma generate`, which needs the schema and prisma.config.ts.
COPY package.json package-lock.json prisma.config.ts ./
COPY prisma ./prisma
RUN npm ci
COPY . .
# A build that fails stops the image here rather than at the first start.
RUN npm run build

# Production dependencies only, from the same lockfile. --omit=optional as well: prisma and
# typescript are optional peers of @prisma/client, which npm keeps under --omit=dev alone; the only
# other optional packages are msgpackr-extract (faster msgpack decoding, which BullMQ does not do)
# and pg-cloudflare (Cloudflare Workers only). --ignore-scripts: postinstall's `prisma generate`
# is the build stage's job, its output is compiled into dist/.
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --omit=optional --ignore-scripts

# The runtime stage leaves npm's download cache, the dev dependencies and the sources behind.
FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Owned by root: nothing is regenerated at start, and the daemon writes nothing under /app.
COPY --from=deps /app/node_modules ./node_modules
# npm start reads its script here; the daemon finds its root and version by it.
COPY --from=build /app/package.json ./
# Applied by the daemon at start (src/paths.ts MIGRATIONS_DIR).
COPY --from=build /app/prisma/migrations ./prisma/migrations
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/workers ./dist/workers
USER node
EXPOSE 8080
# Liveness: the process answers HTTP. compose.yaml checks readiness (/readyz) as well.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The start script execs node, so `docker stop`'s SIGTERM reaches the daemon, which hands its
# sessions back within QRFLEET_SHUTDOWN_GRACE_MS and exits 0.
CMD ["npm", "start"]

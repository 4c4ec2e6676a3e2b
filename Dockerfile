# qrfleet daemon image. Build from the repository root:
#   docker build -t qrfleet .
# It runs what README "Running it for real" says: `npm ci`, `npm run build`, then `npm start`.
# `npm start` builds again before it runs (the Prisma client is generated offline, no download),
# so the image keeps the dev dependencies that build needs (prisma, typescript).

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

# The runtime stage leaves npm's download cache and the build stage's layers behind.
FROM node:20-slim
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    NPM_CONFIG_UPDATE_NOTIFIER=false
WORKDIR /app
# Owned by the unprivileged user, because `npm start` regenerates src/generated and dist/ at start.
COPY --from=build --chown=node:node /app /app
USER node
EXPOSE 8080
# Liveness: the process answers HTTP. compose.yaml checks readiness (/readyz) as well.
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# The start script execs node, so `docker stop`'s SIGTERM reaches the daemon, which hands its
# sessions back within QRFLEET_SHUTDOWN_GRACE_MS and exits 0.
CMD ["npm", "start"]

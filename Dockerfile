# syntax=docker/dockerfile:1
# The gateway alone, compiled to JavaScript, on the Node major the tests run with (24, the active LTS).
# Build: docker build -t hyperstudy-graphql .
# Run:   docker run --rm -p 4000:4000 -e HYPERSTUDY_API_URL=https://api.hyperstudy.io/api/v3 hyperstudy-graphql

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM node:24-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-bookworm-slim
# NODE_ENV=production as with npm start: graphql-js reads it once, when first loaded, and skips its
# development-only checks (instanceOf across realms).
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=4000
WORKDIR /app
COPY --from=deps --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node package.json ./
# EXPORT_DIR's default (export jobs' pages and files), writable by the unprivileged user.
RUN mkdir -p /app/exports && chown node:node /app/exports
USER node
EXPOSE 4000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 4000) + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/main.js"]

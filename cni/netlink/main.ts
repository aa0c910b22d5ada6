// The netlink helper's executable (`npm run build` compiles it with bun into
// dist/bin/eniway-netlink): the daemon starts it once and keeps it. It ships
// in the image with the daemon, never in the node's CNI folder.

import { netlinkHelper } from "./helper.js";

netlinkHelper().then(
  (code) => process.exit(code),
  () => process.exit(1),
);

// Bundle-size bench: the gzipped size of the JavaScript (and CSS) that index.html loads initially.
//   npm --prefix web run size        (after npm run build)
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dist = resolve(dirname(fileURLToPath(import.meta.url)), "..", "dist");
const html = readFileSync(join(dist, "index.html"), "utf8");
const refs = [...html.matchAll(/(?:src|href)="\/?(assets\/[^"]+\.(?:js|css))"/g)].map((m) => m[1]);
let js = 0;
let css = 0;
for (const r of refs) {
  const gz = gzipSync(readFileSync(join(dist, r)), { level: 9 }).length;
  if (r.endsWith(".js")) js += gz;
  else css += gz;
  console.log(`${r.padEnd(40)} ${(gz / 1024).toFixed(1)} KiB gzipped`);
}
console.log(`initial JS: ${(js / 1024).toFixed(1)} KiB gzipped (target ≤ 200 KB); CSS: ${(css / 1024).toFixed(1)} KiB gzipped`);

// Counts the runtime + type names each package entry exports (from the built .d.ts).
import ts from "typescript";
import { readdirSync, existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
const root = process.argv[2] ?? ".";
const out = {};
for (const p of readdirSync(join(root, "packages"))) {
  const pkg = JSON.parse(readFileSync(join(root, "packages", p, "package.json"), "utf8"));
  const entries = Object.entries(pkg.exports ?? {}).filter(([k]) => k !== "./package.json");
  for (const [k, v] of entries) {
    const dts = v.import?.types ?? v.types;
    if (!dts) continue;
    const f = join(root, "packages", p, dts);
    if (!existsSync(f)) continue;
    const program = ts.createProgram([f], { allowJs: false, noEmit: true });
    const checker = program.getTypeChecker();
    const sf = program.getSourceFile(f);
    const sym = checker.getSymbolAtLocation(sf);
    out[`${pkg.name}${k === "." ? "" : k.slice(1)}`] = sym ? checker.getExportsOfModule(sym).length : 0;
  }
}
let total = 0;
for (const [k, v] of Object.entries(out)) {
  console.log(`${k}\t${v}`);
  total += v;
}
console.log(`total\t${total}`);

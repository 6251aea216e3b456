import { preview } from "vite";
import { chromium } from "playwright-core";
import { writeFileSync } from "node:fs";
const server = await preview({ root: process.cwd(), preview: { port: 5391, host: "127.0.0.1" }, logLevel: "warn" });
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--headless=new","--no-sandbox","--enable-unsafe-webgpu","--enable-features=Vulkan","--use-vulkan=swiftshader","--use-webgpu-adapter=swiftshader","--disable-background-networking","--disable-component-update","--disable-sync","--no-first-run","--disable-quic"] });
const page = await browser.newPage();
const t0 = Date.now();
await page.goto("http://127.0.0.1:5391/?smoke=1&steps=60&sftSteps=4" + (process.argv[2] ?? ""));
let s;
for (;;) {
  await page.waitForTimeout(2000);
  s = await page.evaluate(() => { const m = window.__midtrain; return { status: m.status, steps: m.steps, jobEvents: m.jobEvents, err: m.error, b: m.backendDescription }; });
  if (s.status === "done" || s.status === "error" || Date.now() - t0 > Number(process.argv[3] ?? 400000)) break;
}
s.wall = Date.now() - t0;
writeFileSync(process.argv[4] ?? "/tmp/prof.json", JSON.stringify(s));
console.log(s.status, s.wall, s.steps.length, s.err);
await browser.close(); await server.close();
